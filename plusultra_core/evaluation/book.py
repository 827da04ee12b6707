"""The one booking rule: strategies' decisions in, a net-of-cost per-symbol book out.

A fold (`fold.evaluate_fold`) and the chained record (`leaderboard.build_leaderboard`) both call
`book_decisions`, so a fold booked alone and many folds booked together follow exactly the same rules.

Decisions (``DECISION_COLUMNS``, long: one row per strategy x in-period symbol-day with a bar):
``timestamp`` (decision time, the close of ``t``), ``symbol``, ``strategy``, ``in_universe``
(every model strategy has a position there), the strategy's raw ``position`` (NaN = no view) and
``expected_return``, ``realised_return`` and ``realised_at`` (the same symbol's next bar: its
``ret_1d`` and timestamp, NaT when the data ends first), and ``date``: the realisation date of the
decision day, the calendar's next bar after ``timestamp`` (the date the money is made).

Booking conventions (all strategies alike, so the comparison is fair):

- Alignment: a position decided at the close of ``t`` earns the next bar's return. A symbol-day
  without a next bar is not booked (coverage reason ``no_next_bar``); a NaN next-bar return is a
  flat bar (0).
- Universe: only ``in_universe`` symbol-days hold a position; there a strategy without a view is
  flat (0). A symbol-day outside the universe is flat: the exit is charged (reason
  ``no_model_position`` in the coverage).
- Costs: ``pnl = position * next_return - cost * |position - previous position|`` with
  ``cost = cost_bps * 1e-4`` (`plusultra_core.losses.pnl_stream`). A day on which a symbol has no
  bar holds its position with no return (the next bar's ``ret_1d`` spans the gap) and no trade.
- Continuity: each symbol's book is flat before the first decision day given, then carries. So
  booking one fold's decisions is that fold *standalone* (entry from flat at the fold start) and
  booking the union of consecutive folds' decisions is *one continuous book*: no re-entry cost at
  a fold boundary for an unchanged position.
- Portfolio: equal weight over the *active* symbols of a day -- those in the universe, plus those
  exiting to flat -- i.e. the mean of their net PnL; a day with none is a 0 return (cash).
  ``daily`` is indexed by the realisation ``date``.
- ``buy_and_hold@exposure`` (added when ``buy_and_hold`` is booked beside a ``primary``
  strategy): a constant position equal to the primary's mean net position over its booked
  universe symbol-days, on the same universe. It uses the *booked period's* average exposure, so
  it is a benchmark that tells a small constant long from timing skill, not a tradable rule.

Everything is vectorised over symbols and days; the only Python loop is over the few strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core.errors import DataValidationError
from plusultra_core.evaluation._frame import to_ns
from plusultra_core.evaluation.scoring import POSITION_COLUMNS, daily_returns
from plusultra_core.losses import pnl_stream

__all__ = ["DECISION_COLUMNS", "BUY_AND_HOLD", "EXPOSURE_MATCHED", "COVERAGE_COLUMNS", "Book",
           "DecisionPanel", "decision_frame", "unpack_decisions", "book_decisions", "reprice",
           "coverage_table"]

DECISIONS = "decisions"
DECISION_COLUMNS = ["timestamp", "symbol", "strategy", "in_universe", "position", "expected_return",
                    "realised_return", "realised_at", "date"]
BUY_AND_HOLD = "buy_and_hold"
EXPOSURE_MATCHED = "buy_and_hold@exposure"
COVERAGE_COLUMNS = [
    "start", "end", "decision_days", "scored_days", "unscored_days_no_next_bar",
    "unscored_days_no_model_position", "symbol_days", "scored_symbol_days",
    "unscored_symbol_days_no_next_bar", "unscored_symbol_days_no_model_position",
    "unscored_day_examples", "no_next_bar_examples", "no_model_position_examples"]
N_EXAMPLES = 3
_NAT = np.datetime64("NaT", "ns")


@dataclass
class DecisionPanel:
    """Decisions in wide form: ``K`` symbol-days sorted by (symbol, timestamp), ``S`` strategies.

    timestamp, symbol, in_universe, realised_return, realised_at, date: ``[K]``;
    position, expected_return: ``[S, K]`` (NaN = no view).
    """

    strategies: list[str]
    timestamp: np.ndarray
    symbol: np.ndarray
    in_universe: np.ndarray
    realised_return: np.ndarray
    realised_at: np.ndarray
    date: np.ndarray
    position: np.ndarray
    expected_return: np.ndarray

    @property
    def scored(self) -> np.ndarray:
        """[K] booked with an outcome: in the universe and a next bar exists."""
        return self.in_universe & ~np.isnat(self.realised_at)


@dataclass
class Book:
    """A booked set of decisions.

    positions:  long book (`scoring.POSITION_COLUMNS`), one row per strategy x active symbol-day.
    daily:      date x strategy equal-weight portfolio net returns (index = realisation date).
    strategies: column order of ``daily`` (the decisions' strategies, then any derived one).
    exposure:   the primary's mean net position over its booked universe symbol-days, the
                position of ``buy_and_hold@exposure`` (None when that strategy is not booked).
    """

    positions: pd.DataFrame
    daily: pd.DataFrame
    strategies: list[str]
    exposure: float | None = None


def decision_frame(timestamp, symbol, in_universe, realised_return, realised_at, date,
                   strategies: Sequence[str], position: np.ndarray,
                   expected_return: np.ndarray) -> pd.DataFrame:
    """Long decisions frame (``DECISION_COLUMNS``) from ``[K]`` symbol-day arrays and ``[S, K]``
    per-strategy arrays; rows are strategy-major, in the given symbol-day order."""
    strategies = list(strategies)
    s, k = len(strategies), len(timestamp)
    if np.shape(position) != (s, k) or np.shape(expected_return) != (s, k):
        raise ValueError(f"decision_frame: position/expected_return must be [{s}, {k}], "
                         f"got {np.shape(position)} and {np.shape(expected_return)}")

    def tile(values):
        return np.tile(np.asarray(values), s)

    out = pd.DataFrame({
        "timestamp": tile(np.asarray(timestamp, dtype="datetime64[ns]")),
        "symbol": tile(np.asarray(symbol, dtype=object)),
        "strategy": np.repeat(np.asarray(strategies, dtype=object), k),
        "in_universe": tile(np.asarray(in_universe, dtype=bool)),
        "position": np.asarray(position, dtype=np.float64).reshape(-1),
        "expected_return": np.asarray(expected_return, dtype=np.float64).reshape(-1),
        "realised_return": tile(np.asarray(realised_return, dtype=np.float64)),
        "realised_at": tile(np.asarray(realised_at, dtype="datetime64[ns]")),
        "date": tile(np.asarray(date, dtype="datetime64[ns]")),
    }, columns=DECISION_COLUMNS)
    out["symbol"] = out["symbol"].astype(str)
    out["strategy"] = out["strategy"].astype(str)
    return out


def _take_strings(names, codes: np.ndarray):
    """``names[codes]`` as a pandas string array, taken without building Python strings per row."""
    return pd.Series(np.asarray(names, dtype=object)).astype(str).array.take(codes)


def _fail(message: str, check: str, column: str, cases: pd.DataFrame | None = None):
    raise DataValidationError(f"{DECISIONS}: {message}", table=DECISIONS, column=column, check=check,
                              failure_cases=cases)


def _examples(symbols: np.ndarray, timestamps: np.ndarray, n: int = N_EXAMPLES) -> str:
    return ", ".join(f"{s}@{str(t)[:10]}" for s, t in zip(symbols[:n], timestamps[:n]))


def unpack_decisions(decisions: pd.DataFrame, strategies: Sequence[str] | None = None) -> DecisionPanel:
    """Wide `DecisionPanel` of a long decisions frame (one fold's, or the union of several folds').

    Raises DataValidationError when a column is missing, a (strategy, symbol, timestamp) is
    decided twice (e.g. two folds book the same day), a strategy lacks a symbol-day another one
    has, or the rows of one symbol-day disagree on the shared columns.
    """
    if isinstance(decisions, DecisionPanel):
        return decisions
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        _fail(f"missing columns {missing}", "columns_present", missing[0])
    # factorize the string columns once (fast on Arrow strings); names come from the few uniques
    s_raw, s_names = pd.factorize(decisions["strategy"])
    s_names = [str(n) for n in s_names]
    strategies = list(s_names) if strategies is None else list(strategies)
    s_code = pd.Index(strategies).get_indexer(pd.Index(s_names))[s_raw].astype(np.int64)   # [M]
    if (s_code < 0).any():
        _fail(f"strategies {sorted(set(s_names) - set(strategies))} are not among {strategies}",
              "known_strategies", "strategy")
    ts = to_ns(decisions["timestamp"], DECISIONS).to_numpy()
    sym_code, sym_names = pd.factorize(decisions["symbol"].astype(str), sort=True)
    sym_names = np.asarray(sym_names, dtype=object)
    ts_code, ts_values = pd.factorize(ts, sort=True)
    key_code, keys = pd.factorize(sym_code.astype(np.int64) * len(ts_values) + ts_code, sort=True)
    n_strat, n_keys = len(strategies), len(keys)

    counts = np.bincount(s_code * n_keys + key_code, minlength=n_strat * n_keys)  # [S*K]
    if (counts > 1).any():
        dup = np.isin(s_code * n_keys + key_code, np.flatnonzero(counts > 1))
        _fail(f"{int((counts > 1).sum())} (strategy, symbol, timestamp) decisions are booked twice, "
              f"first {_examples(sym_names[sym_code[dup]], ts[dup])} ({strategies[s_code[dup][0]]})",
              "booked_once", "timestamp",
              decisions.loc[dup, ["strategy", "symbol", "timestamp"]].head(5))
    if (counts == 0).any():
        s_miss, k_miss = np.divmod(np.flatnonzero(counts == 0), n_keys)
        key = keys[k_miss[0]]
        _fail(f"{s_miss.size} (strategy, symbol-day) decisions are missing, first "
              f"{strategies[s_miss[0]]!r} at {sym_names[key // len(ts_values)]}@"
              f"{str(ts_values[key % len(ts_values)])[:10]}", "complete", "strategy")

    def per_key(values: np.ndarray, fill) -> np.ndarray:
        out = np.full(n_keys, fill, dtype=values.dtype)
        out[key_code] = values                                       # every row of a key writes ...
        back = out[key_code]
        same = back == values
        if values.dtype.kind == "f":
            same |= np.isnan(back) & np.isnan(values)
        elif values.dtype.kind == "M":
            same |= np.isnat(back) & np.isnat(values)
        if not same.all():                                           # ... the same value
            _fail(f"{int((~same).sum())} rows disagree with the other strategies of their symbol-day "
                  f"on a shared column, first {_examples(sym_names[sym_code[~same]], ts[~same], 1)}",
                  "consistent", "symbol")
        return out

    position = np.full((n_strat, n_keys), np.nan)
    expected = np.full((n_strat, n_keys), np.nan)
    position[s_code, key_code] = decisions["position"].to_numpy(dtype=np.float64, na_value=np.nan)
    expected[s_code, key_code] = decisions["expected_return"].to_numpy(dtype=np.float64, na_value=np.nan)
    return DecisionPanel(
        strategies=strategies,
        timestamp=np.asarray(ts_values)[keys % len(ts_values)].astype("datetime64[ns]"),
        symbol=sym_names[keys // len(ts_values)],
        in_universe=per_key(decisions["in_universe"].to_numpy(dtype=bool), False),
        realised_return=per_key(decisions["realised_return"].to_numpy(dtype=np.float64, na_value=np.nan), np.nan),
        realised_at=per_key(to_ns(decisions["realised_at"], DECISIONS, "realised_at").to_numpy(), _NAT),
        date=per_key(to_ns(decisions["date"], DECISIONS, "date").to_numpy(), _NAT),
        position=position, expected_return=expected)


def _with_exposure_matched(panel: DecisionPanel, primary: str | None) -> tuple[DecisionPanel, float | None]:
    """The panel plus ``buy_and_hold@exposure`` when ``buy_and_hold`` and ``primary`` are booked."""
    if primary is None or BUY_AND_HOLD not in panel.strategies:
        return panel, None
    if primary not in panel.strategies:
        _fail(f"primary strategy {primary!r} is not among {panel.strategies}", "known_strategies", "strategy")
    scored = panel.scored
    held = panel.position[panel.strategies.index(primary), scored]   # finite: the universe
    exposure = float(np.nan_to_num(held, nan=0.0).mean()) if held.size else float("nan")
    extra = np.where(panel.in_universe, exposure, np.nan)[None, :]   # [1, K] a constant position
    return DecisionPanel(
        strategies=[*panel.strategies, EXPOSURE_MATCHED], timestamp=panel.timestamp,
        symbol=panel.symbol, in_universe=panel.in_universe, realised_return=panel.realised_return,
        realised_at=panel.realised_at, date=panel.date,
        position=np.concatenate([panel.position, extra]),
        expected_return=np.concatenate([panel.expected_return, np.full_like(extra, np.nan)])), exposure


def book_decisions(decisions: pd.DataFrame | DecisionPanel, cost_bps: float, *,
                   primary: str | None = None, strategies: Sequence[str] | None = None) -> Book:
    """Book ``decisions`` as one continuous book per strategy (module docstring), net of costs.

    Args:
        decisions: long decisions (``DECISION_COLUMNS``) or an unpacked `DecisionPanel`.
        cost_bps: one-way cost per unit of |position change|, in basis points.
        primary: the strategy whose average exposure ``buy_and_hold@exposure`` holds (none: no
            such strategy is added).
        strategies: the order of the decisions' strategies (default: order of appearance).
    """
    panel, exposure = _with_exposure_matched(unpack_decisions(decisions, strategies), primary)
    cost = float(cost_bps) * 1e-4
    rows = np.flatnonzero(~np.isnat(panel.realised_at))               # [R] symbol-days with an outcome
    ts = panel.timestamp
    sym_codes, sym_names = pd.factorize(panel.symbol[rows], sort=True)
    date_codes, grid_dates = pd.factorize(ts[rows], sort=True)
    n_sym, n_dates = len(sym_names), len(grid_dates)

    label = np.full(n_dates, _NAT)
    label[date_codes] = panel.date[rows]
    if np.isnat(label).any() or (label[date_codes] != panel.date[rows]).any() \
            or (n_dates > 1 and not (np.diff(label) > np.timedelta64(0)).all()):
        _fail("the realisation dates are missing, disagree within a decision day, or do not "
              "increase with the decision days (one calendar for every fold?)", "dates_increasing", "date")

    present = np.zeros((n_sym, n_dates), dtype=bool)                  # [n_sym, n_dates]
    present[sym_codes, date_codes] = True
    row_of = np.full((n_sym, n_dates), -1)
    row_of[sym_codes, date_codes] = rows
    in_universe = np.zeros((n_sym, n_dates), dtype=bool)
    in_universe[sym_codes, date_codes] = panel.in_universe[rows]
    # a day without a bar holds the symbol's last position (forward only: causal, never backward)
    last = np.maximum.accumulate(np.where(present, np.arange(n_dates), -1), axis=1)  # [n_sym, n_dates]
    ret = np.zeros((n_sym, n_dates))
    ret[sym_codes, date_codes] = np.nan_to_num(panel.realised_return[rows], nan=0.0)  # unknown: flat bar
    # a universe symbol-day holds the strategy's position (no view = flat); outside it is flat
    booked = np.where(panel.in_universe, np.nan_to_num(panel.position, nan=0.0), 0.0)  # [S, K]

    parts = []
    for s in range(len(panel.strategies)):  # a handful of strategies; each step is vectorised
        grid = np.zeros((n_sym, n_dates))
        grid[sym_codes, date_codes] = booked[s, rows]
        grid = np.where(last >= 0, np.take_along_axis(grid, np.maximum(last, 0), axis=1), 0.0)
        pnl = pnl_stream(grid, ret, cost, initial_position=0.0)       # flat before the first day
        change = np.diff(grid, axis=1, prepend=0.0)
        c_idx, d_idx = np.nonzero(present & (in_universe | (change != 0)))   # active symbol-days
        k = row_of[c_idx, d_idx]
        parts.append((np.full(k.size, s), c_idx, d_idx, k, grid[c_idx, d_idx], change[c_idx, d_idx],
                      pnl[c_idx, d_idx]))
    s_idx, c_idx, d_idx, k, position, change, pnl = (np.concatenate(a) for a in zip(*parts))
    positions = pd.DataFrame({
        "date": label[d_idx], "timestamp": ts[k],
        "symbol": _take_strings(sym_names, c_idx), "strategy": _take_strings(panel.strategies, s_idx),
        "position": position, "change": change,
        "expected_return": np.where(panel.in_universe[k], panel.expected_return[s_idx, k], np.nan),
        "realised_return": panel.realised_return[k], "realised_at": panel.realised_at[k],
        "cost": cost * np.abs(change), "pnl": pnl,
    }, columns=POSITION_COLUMNS)
    dates = pd.DatetimeIndex(label, name="date")
    return Book(positions=positions, daily=daily_returns(positions, dates, panel.strategies),
                strategies=list(panel.strategies), exposure=exposure)


def reprice(positions: pd.DataFrame, cost_bps: float) -> pd.DataFrame:
    """The book at another cost. Positions and changes do not depend on the cost, so only
    ``cost`` and ``pnl`` change, by the same arithmetic as `book_decisions`: the numbers equal
    re-booking the decisions at ``cost_bps``."""
    cost = float(cost_bps) * 1e-4
    change = positions["change"].to_numpy(dtype=np.float64)
    gross = positions["position"].to_numpy(dtype=np.float64) * np.nan_to_num(
        positions["realised_return"].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
    return positions.assign(cost=cost * np.abs(change), pnl=gross - cost * abs(change))


def coverage_table(decisions: pd.DataFrame | DecisionPanel,
                   periods: Sequence[tuple[pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    """What was scored, per period and in total (row ``"total"``), and why the rest was not.

    One row per period ``[start, end)`` (index: the start date), columns ``COVERAGE_COLUMNS``:
    decision days (distinct timestamps with a bar) and symbol-days with a bar; scored ones (in
    the universe with a next bar); the unscored ones by reason -- ``no_next_bar`` (the data ends
    before the outcome) before ``no_model_position`` (no valid model window) -- and the first
    few examples (``SYMBOL@date``; unscored days as ``date (reason)``).
    """
    panel = unpack_decisions(decisions)
    ts = panel.timestamp
    starts = np.array([np.datetime64(pd.Timestamp(a), "ns") for a, _ in periods])
    ends = np.array([np.datetime64(pd.Timestamp(b), "ns") for _, b in periods])
    which = np.searchsorted(starts, ts, side="right") - 1             # [K] period of each symbol-day
    outside = (which < 0) | (ts >= ends[np.maximum(which, 0)])
    if outside.any():
        _fail(f"{int(outside.sum())} decisions lie outside every period, first "
              f"{_examples(panel.symbol[outside], ts[outside], 1)}", "in_period", "timestamp")
    has_next = ~np.isnat(panel.realised_at)
    scored = panel.in_universe & has_next
    no_next, no_model = ~has_next, has_next & ~panel.in_universe
    # per decision day: scored if any symbol-day is; otherwise no_next_bar if none has a next bar
    day_code, days = pd.factorize(ts, sort=True)
    day_period = np.zeros(len(days), dtype=np.int64)
    day_period[day_code] = which
    day_scored = np.bincount(day_code, weights=scored, minlength=len(days)) > 0
    day_next = np.bincount(day_code, weights=has_next, minlength=len(days)) > 0
    day_no_next, day_no_model = ~day_next, day_next & ~day_scored

    def per_period(mask: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=len(periods)).astype(np.int64)

    order = np.argsort(ts, kind="stable")                            # examples: earliest first
    rows = []
    for p, (start, end) in enumerate(periods):  # a handful of folds
        mine = order[which[order] == p]
        days_mine = np.flatnonzero((day_period == p) & ~day_scored)
        reasons = np.where(day_no_next[days_mine], "no_next_bar", "no_model_position")
        rows.append({
            "start": pd.Timestamp(start), "end": pd.Timestamp(end),
            "unscored_day_examples": ", ".join(f"{str(d)[:10]} ({r})" for d, r in
                                               zip(np.asarray(days)[days_mine][:N_EXAMPLES], reasons[:N_EXAMPLES])),
            "no_next_bar_examples": _examples(panel.symbol[mine[no_next[mine]]], ts[mine[no_next[mine]]]),
            "no_model_position_examples": _examples(panel.symbol[mine[no_model[mine]]], ts[mine[no_model[mine]]]),
        })
    table = pd.DataFrame(rows)
    counts = {
        "decision_days": per_period(np.ones(len(days), dtype=bool), day_period),
        "scored_days": per_period(day_scored, day_period),
        "unscored_days_no_next_bar": per_period(day_no_next, day_period),
        "unscored_days_no_model_position": per_period(day_no_model, day_period),
        "symbol_days": per_period(np.ones(len(ts), dtype=bool), np.maximum(which, 0)),
        "scored_symbol_days": per_period(scored, which),
        "unscored_symbol_days_no_next_bar": per_period(no_next, which),
        "unscored_symbol_days_no_model_position": per_period(no_model, which),
    }
    for name, values in counts.items():
        table[name] = values
    table.index = pd.Index([str(pd.Timestamp(a).date()) for a, _ in periods], name="fold")
    total = {name: int(values.sum()) for name, values in counts.items()}
    total.update({"start": table["start"].min(), "end": table["end"].max()})
    for col in ("unscored_day_examples", "no_next_bar_examples", "no_model_position_examples"):
        first = [e for e in table[col] if e]
        total[col] = ", ".join(", ".join(first).split(", ")[:N_EXAMPLES]) if first else ""
    table.loc["total"] = pd.Series(total)
    table = table[COVERAGE_COLUMNS]
    for name in counts:
        table[name] = table[name].astype(np.int64)
    return table
