"""One walk-forward fold: a model's out-of-sample positions beside the baselines, net of costs.

Fold k is the out-of-sample period ``[start, end)`` = ``[C_k, C_{k+1})`` of the model trained at
cutoff ``C_k``. Conventions (all strategies alike, so the comparison is fair):

- Alignment: a position decided at the close of ``t`` earns the same symbol's *next* bar return
  (``ret_1d`` of the next row). Rows whose symbol has no next bar yet are not evaluated.
- Universe: the symbol-days where the model has a (non-NaN) position. Baselines are scored on
  exactly those symbol-days; a baseline without a view there (momentum warm-up, invalid features)
  is flat (0).
- Costs: ``pnl = position * next_return - cost * |position - previous position|`` with
  ``cost = cost_bps * 1e-4`` (`plusultra_core.losses.pnl_stream`). The book starts flat at the
  fold start (the entry is charged); a universe row without a position is flat (the exit is
  charged); a day on which a symbol has no bar at all holds its position with no return (the
  next bar's ``ret_1d`` spans the gap) and no trade.
- Portfolio: equal weight over the *active* symbols of a day -- those with a position, plus those
  exiting to flat -- i.e. the mean of their net PnL; a day with none is a 0 return (cash).
- ``daily`` is indexed by the realisation date: the calendar's next bar after the decision date
  (the calendar is every timestamp in the frame), so equity curves are dated when money is made.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation import baselines as B
from plusultra_core.evaluation._frame import (check_period, in_period, next_bar, prepare_frame,
                                              to_ns, to_timestamp)
from plusultra_core.evaluation._io import text_writer, write_files_atomically
from plusultra_core.evaluation.scoring import (POSITION_COLUMNS, daily_returns, strategy_metrics)
from plusultra_core.losses import pnl_stream

__all__ = ["FoldResult", "evaluate_fold", "DEFAULT_BASELINES"]

DEFAULT_BASELINES = ("buy_and_hold", "momentum", "linear")
PREDICTIONS = "predictions"
_FILES = {"daily": "daily.parquet", "positions": "positions.parquet",
          "metrics": "metrics.csv", "meta": "fold.json"}


@dataclass
class FoldResult:
    """Out-of-sample result of one fold.

    daily:     DataFrame, index ``date`` (realisation date), one column per strategy (model
               first): equal-weight portfolio net returns.
    positions: long DataFrame (`scoring.POSITION_COLUMNS`): one row per strategy x active
               symbol-day with ``position``, ``change``, ``realised_return``, ``cost``, ``pnl``.
    metrics:   DataFrame strategy x metric (`scoring.METRIC_COLUMNS`).
    period:    ``(start, end)`` of the half-open decision period ``[start, end)``.
    cost_bps:  one-way cost per unit of position change, in basis points.
    info:      JSON-able facts: model name, baselines and their settings, counts.
    """

    daily: pd.DataFrame
    positions: pd.DataFrame
    metrics: pd.DataFrame
    period: tuple[pd.Timestamp, pd.Timestamp]
    cost_bps: float
    model_name: str = "model"
    info: dict = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        """Strategy names, model first, in column order."""
        return list(self.daily.columns)

    def to_files(self, directory) -> list[Path]:
        """Write ``daily.parquet``, ``positions.parquet``, ``metrics.csv`` and ``fold.json``.

        All four are staged under temp names and renamed only once every one is written.
        """
        return write_files_atomically(self.file_writers(directory))

    def file_writers(self, directory) -> dict[Path, Callable[[Path], None]]:
        """``final path -> writer(temp path)`` of the `to_files` files (for combined atomic writes)."""
        directory = Path(directory)
        meta = {"period": [str(self.period[0]), str(self.period[1])], "cost_bps": self.cost_bps,
                "model_name": self.model_name, "strategies": self.strategies, "info": self.info,
                "files": _FILES}

        def parquet(df: pd.DataFrame):
            return lambda tmp: df.to_parquet(tmp, index=True)

        return {
            directory / _FILES["daily"]: parquet(self.daily),
            directory / _FILES["positions"]: parquet(self.positions.reset_index(drop=True)),
            directory / _FILES["metrics"]: text_writer(self.metrics.to_csv()),
            directory / _FILES["meta"]: text_writer(json.dumps(meta, indent=2, default=str)),
        }

    @classmethod
    def from_files(cls, directory) -> "FoldResult":
        """Read back what `to_files` wrote; a missing file is a DataValidationError naming it."""
        directory = Path(directory)
        for key, name in _FILES.items():
            if not (directory / name).is_file():
                raise DataValidationError(f"fold result: {directory / name} is missing",
                                          table="fold_result", column=key, check="files_present")
        meta = json.loads((directory / _FILES["meta"]).read_text())
        daily = pd.read_parquet(directory / _FILES["daily"])
        daily.columns.name = "strategy"
        metrics = pd.read_csv(directory / _FILES["metrics"], index_col="strategy")
        return cls(daily=daily, positions=pd.read_parquet(directory / _FILES["positions"]),
                   metrics=metrics,
                   period=(pd.Timestamp(meta["period"][0]), pd.Timestamp(meta["period"][1])),
                   cost_bps=float(meta["cost_bps"]), model_name=meta["model_name"],
                   info=meta.get("info", {}))


def _check_predictions(predictions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Predictions decided in ``[start, end)``, validated (keys, finite positions in [-1, 1])."""
    if not isinstance(predictions, pd.DataFrame):
        raise DataValidationError(f"{PREDICTIONS}: expected a DataFrame, got {type(predictions).__name__}",
                                  table=PREDICTIONS, check="type")
    missing = [c for c in ("timestamp", "symbol", "position") if c not in predictions.columns]
    if missing:
        raise DataValidationError(f"{PREDICTIONS}: missing columns {missing}", table=PREDICTIONS,
                                  column=missing[0], check="columns_present")
    pred = pd.DataFrame({
        "timestamp": to_ns(predictions["timestamp"], PREDICTIONS),
        "symbol": predictions["symbol"].astype(str),
        "position": pd.to_numeric(predictions["position"], errors="coerce").astype(np.float64),
        "expected_return": (pd.to_numeric(predictions["expected_return"], errors="coerce").astype(np.float64)
                            if "expected_return" in predictions.columns else np.nan),
    })
    pred = pred[(pred["timestamp"] >= start) & (pred["timestamp"] < end)]
    # NaN = no decision on that row (same as no row); anything else must be a real position.
    bad = pred["position"].notna() & ~pred["position"].between(-1.0, 1.0)
    if bad.any():
        raise DataValidationError(
            f"{PREDICTIONS}: {int(bad.sum())} positions are not finite numbers in [-1, 1], first "
            f"{pred.loc[bad, 'position'].iloc[0]!r} at {tuple(pred.loc[bad, ['symbol', 'timestamp']].iloc[0])}",
            table=PREDICTIONS, column="position", check="in_range", failure_cases=pred[bad].head(5))
    dup = pred.duplicated(["symbol", "timestamp"], keep=False)
    if dup.any():
        raise DataValidationError(
            f"{PREDICTIONS}: {int(dup.sum())} rows share a (symbol, timestamp) key",
            table=PREDICTIONS, column="timestamp", check="unique_keys", failure_cases=pred[dup].head(5))
    return pred.reset_index(drop=True)


def _scatter(frame_keys: pd.MultiIndex, rows: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """[N] position and expected_return of ``rows`` placed on the frame's rows (NaN elsewhere)."""
    idx = frame_keys.get_indexer(pd.MultiIndex.from_arrays([rows["symbol"], rows["timestamp"]]))
    unknown = idx < 0
    if unknown.any():
        raise DataValidationError(
            f"{what}: {int(unknown.sum())} rows have no bar in the window frame, first "
            f"{tuple(rows.loc[unknown, ['symbol', 'timestamp']].iloc[0])}",
            table=what, column="symbol", check="rows_in_frame", failure_cases=rows[unknown].head(5))
    pos = np.full(len(frame_keys), np.nan)
    exp = np.full(len(frame_keys), np.nan)
    pos[idx] = rows["position"].to_numpy(dtype=np.float64)
    exp[idx] = rows["expected_return"].to_numpy(dtype=np.float64)
    return pos, exp


def _baseline_rows(name: str, frame: pd.DataFrame, start, end, feature_names, train_end, purge,
                   momentum_lookback: int, ridge: float, linear_sizing: str, info: dict) -> pd.DataFrame:
    if name == "buy_and_hold":
        return B.buy_and_hold(frame, start, end)
    if name == "momentum":
        info["momentum"] = {"lookback": momentum_lookback}
        return B.momentum_rule(frame, start, end, lookback=momentum_lookback)
    if train_end is None or not feature_names:
        raise ConfigError("evaluate_fold: the 'linear' baseline needs feature_names and train_end")
    if to_timestamp(train_end, "train_end") > start:
        raise ConfigError(f"evaluate_fold: train_end {train_end} is after the fold start {start}")
    fit = B.fit_linear(frame, feature_names, train_end, purge, ridge)
    info["linear"] = {"n_train": fit.n_train, "last_target_time": str(fit.last_target_time),
                      "train_end": str(train_end), "purge_bars": int(purge), "ridge": ridge,
                      "sizing": linear_sizing, "scale": fit.scale,
                      "coef": dict(zip(fit.feature_names, map(float, fit.coef))),
                      "intercept": fit.intercept}
    return B.apply_linear(frame, fit, start, end, linear_sizing)


def _check_args(cost_bps, baselines: Sequence[str], model_name: str) -> tuple[str, ...]:
    if not (isinstance(cost_bps, (int, float)) and math.isfinite(cost_bps) and cost_bps >= 0):
        raise ConfigError(f"evaluate_fold: cost_bps must be a finite number >= 0, got {cost_bps!r}")
    baselines = tuple(baselines)
    unknown = [b for b in baselines if b not in B.BASELINES]
    if unknown:
        raise ConfigError(f"evaluate_fold: unknown baselines {unknown}; known: {sorted(B.BASELINES)}")
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"evaluate_fold: baselines listed twice: {list(baselines)}")
    if not model_name or model_name in baselines:
        raise ConfigError(f"evaluate_fold: model_name {model_name!r} is empty or a baseline's name")
    return baselines


def evaluate_fold(predictions: pd.DataFrame, frame: pd.DataFrame, start, end, *, cost_bps: float,
                  baselines: Sequence[str] = DEFAULT_BASELINES,
                  feature_names: Sequence[str] | None = None, train_end=None, purge: int = 0,
                  model_name: str = "model", momentum_lookback: int = 20, ridge: float = 1.0,
                  linear_sizing: str = "scaled", periods_per_year: int = 252) -> FoldResult:
    """Score a model's predictions and the baselines on the fold ``[start, end)``, net of costs.

    Args:
        predictions: ``[timestamp, symbol, position (in [-1, 1], NaN = no decision),
            expected_return (optional)]``; rows outside ``[start, end)`` are ignored, rows whose
            (symbol, timestamp) is not in ``frame`` are an error.
        frame: window frame ``[timestamp, symbol, <features>, ret_1d, valid]`` holding the history
            the baselines need and at least one bar after ``end`` for the last day's outcome.
        cost_bps: one-way cost per unit of |position change|, in basis points.
        baselines: any of ``"buy_and_hold"``, ``"momentum"``, ``"linear"``.
        feature_names, train_end, purge: the linear baseline's inputs, cutoff and embargo (bars).
        model_name: the model's column name in every output.

    Returns:
        FoldResult (see the module docstring for every convention).

    Raises:
        DataValidationError: malformed frame or predictions, or no prediction with a known outcome.
        ConfigError: bad cost, unknown baseline, ``end <= start``, ``train_end > start``.
    """
    baselines = _check_args(cost_bps, baselines, model_name)
    start, end = check_period(start, end)
    feature_names = list(feature_names or [])
    frame = prepare_frame(frame, feature_names if "linear" in baselines else ())
    pred = _check_predictions(predictions, start, end)
    keys = pd.MultiIndex.from_arrays([frame["symbol"], frame["timestamp"]])
    model_pos, model_exp = _scatter(keys, pred, PREDICTIONS)

    realised, realised_at = next_bar(frame)
    period = in_period(frame, start, end)
    universe = period & np.isfinite(model_pos)                       # [N] symbol-days the model decided
    evaluated = period & ~np.isnat(realised_at)                      # [N] outcome known
    if not (universe & evaluated).any():
        raise DataValidationError(
            f"{PREDICTIONS}: no position in [{start.date()}, {end.date()}) has a known next-bar "
            f"return ({int(universe.sum())} positions, {int(evaluated.sum())} evaluable bars)",
            table=PREDICTIONS, column="position", check="evaluable_rows")

    info: dict = {"model_name": model_name, "baselines": list(baselines)}
    strategies = [model_name, *baselines]
    pos = [np.where(universe, model_pos, np.nan)]                    # S x [N]
    exp = [np.where(universe, model_exp, np.nan)]
    for name in baselines:
        rows = _baseline_rows(name, frame, start, end, feature_names, train_end, purge,
                              momentum_lookback, ridge, linear_sizing, info)
        b_pos, b_exp = _scatter(keys, rows, name)
        # Same universe as the model; no baseline view there means flat.
        pos.append(np.where(universe, np.nan_to_num(b_pos, nan=0.0), np.nan))
        exp.append(np.where(universe, b_exp, np.nan))

    positions, dates = _book(frame, evaluated, universe, np.stack(pos), np.stack(exp), realised,
                             realised_at, strategies, cost_bps * 1e-4)
    daily = daily_returns(positions, dates, strategies)
    metrics = strategy_metrics(daily, positions, periods_per_year)
    info.update({"n_predictions": int(universe.sum()),
                 "n_evaluated": int((universe & evaluated).sum()),
                 "n_unevaluated_no_next_bar": int((universe & ~evaluated).sum()),
                 "n_symbols": int(frame.loc[universe, "symbol"].nunique())})
    return FoldResult(daily=daily, positions=positions, metrics=metrics, period=(start, end),
                      cost_bps=float(cost_bps), model_name=model_name, info=info)


def _book(frame: pd.DataFrame, evaluated: np.ndarray, universe: np.ndarray, pos: np.ndarray,
          exp: np.ndarray, realised: np.ndarray, realised_at: np.ndarray, strategies: list[str],
          cost: float) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Net PnL of every strategy on a symbol x date grid; the long book of active cells.

    pos, exp: ``[S, N]`` per strategy and frame row (NaN outside the universe).
    """
    rows = np.flatnonzero(evaluated)                                 # [R] frame rows on the grid
    ts = frame["timestamp"].to_numpy()
    sym_codes, sym_names = pd.factorize(frame["symbol"].to_numpy()[rows], sort=True)
    date_codes, grid_dates = pd.factorize(ts[rows], sort=True)
    n_sym, n_dates, n_strat = len(sym_names), len(grid_dates), len(strategies)

    present = np.zeros((n_sym, n_dates), dtype=bool)
    present[sym_codes, date_codes] = True
    row_of = np.full((n_sym, n_dates), -1)
    row_of[sym_codes, date_codes] = rows
    in_universe = np.zeros((n_sym, n_dates), dtype=bool)
    in_universe[sym_codes, date_codes] = universe[rows]

    # [S, n_sym, n_dates]: a universe row's position, a non-universe row is flat (0) ...
    grid = np.zeros((n_strat, n_sym, n_dates))
    grid[:, sym_codes, date_codes] = np.nan_to_num(pos[:, rows], nan=0.0)
    # ... and a day without a bar holds the last position (forward only: causal, never backward).
    last = np.maximum.accumulate(np.where(present, np.arange(n_dates), -1), axis=1)   # [n_sym, n_dates]
    held = np.take_along_axis(grid, np.broadcast_to(np.maximum(last, 0), grid.shape), axis=2)
    grid = np.where(last >= 0, held, 0.0)
    ret = np.zeros((n_sym, n_dates))
    ret[sym_codes, date_codes] = np.nan_to_num(realised[rows], nan=0.0)  # unknown return: flat bar

    pnl = pnl_stream(grid, np.broadcast_to(ret, grid.shape), cost, initial_position=0.0)  # [S, n_sym, n_dates]
    change = np.diff(grid, axis=2, prepend=0.0)                      # entry from flat at the fold start
    active = present & (in_universe | (change != 0))                 # [S, n_sym, n_dates]

    s_idx, c_idx, d_idx = np.nonzero(active)
    frame_rows = row_of[c_idx, d_idx]
    # Realisation date: the calendar's next bar after the decision date (exists: rows have a next bar).
    calendar = np.unique(ts)
    label = calendar[np.searchsorted(calendar, np.asarray(grid_dates), side="right")]
    positions = pd.DataFrame({
        "date": label[d_idx],
        "timestamp": ts[frame_rows],
        "symbol": np.asarray(sym_names)[c_idx],
        "strategy": np.asarray(strategies, dtype=object)[s_idx],
        "position": grid[s_idx, c_idx, d_idx],
        "change": change[s_idx, c_idx, d_idx],
        "expected_return": exp[s_idx, frame_rows],
        "realised_return": realised[frame_rows],
        "realised_at": realised_at[frame_rows],
        "cost": cost * np.abs(change[s_idx, c_idx, d_idx]),
        "pnl": pnl[s_idx, c_idx, d_idx],
    }, columns=POSITION_COLUMNS)
    positions["strategy"] = positions["strategy"].astype(str)
    return positions, pd.DatetimeIndex(label, name="date")
