"""Implementation shortfall of executed fills against the positions the inference frames proposed.

Conventions (the evaluation's book, `plusultra_core.evaluation.book`, turned into shares):

- Paper portfolio. On decision day ``D`` a frame proposes a position ``w`` in [-1, 1] per symbol;
  the book holds it with equal weight over the day's symbols, so its target is ``w * capital / N_D``
  currency, ``target_shares = w * capital / N_D / close_D`` (``N_D`` = symbols in D's frame; a
  symbol absent from the frame is flat). The paper order is the change of target shares from the
  previous decision day (flat before the first one given): ``intended``. ``capital`` is constant --
  the book's returns are not compounded either.
- Decision price ``P0`` = the symbol's close on ``D`` (the backtest trades there at ``cost_bps``).
  ``P1`` = its next bar's close, the bar the decision earns.
- Execution cost = ``sum(signed_qty * (price - P0)) + fees``: what the fills paid beyond the
  paper price. Opportunity cost = ``(intended - filled) * (P1 - P0)``: what the unfilled part
  missed. Shortfall (Perold) = paper PnL - real PnL = their sum. Realised cost in bps is the
  execution cost over the traded notional (``|qty| * P0``) -- the number comparable with the
  evaluation's ``cost_bps``, which it charges on the paper order's notional (``simulated_cost``).

One pivot per input and numpy arithmetic: no loop over symbols, days or fills.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError

BPS = 1e4
TABLE_COLUMNS = ["day", "symbol", "position", "previous_position", "decision_price", "next_close",
                 "intended_shares", "filled_shares", "fills", "avg_fill_price", "fees",
                 "intended_notional", "traded_notional", "fill_rate", "execution_cost",
                 "opportunity_cost", "shortfall", "simulated_cost", "shortfall_bps", "realised_cost_bps"]


def _pivot(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    days = pd.to_datetime(frame["timestamp"]).dt.normalize()
    return frame.assign(_day=days).pivot_table(index="_day", columns="symbol", values=value, aggfunc="last")


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=np.abs(den) > 0)
    return out


def paper_orders(proposals: pd.DataFrame, closes: pd.DataFrame, *, capital: float,
                 previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper book's orders: one row per (decision day, symbol) of ``proposals`` plus each symbol
    leaving the book that day, indexed by (``day``, ``symbol``), columns ``position``,
    ``previous_position``, ``decision_price``, ``next_close``, ``intended_shares``.

    Args:
        proposals: inference-frame rows ``timestamp`` (decision day), ``symbol``, ``position``.
        closes: bars ``timestamp``, ``symbol``, ``close`` from the day before the first decision to
            at least one bar after the last (a missing next bar leaves ``next_close`` NaN).
        capital: account currency behind the book (> 0).
        previous: the frame rows of the decision day before the first one (the paper book's
            starting position); None starts flat.
    """
    if not (np.isfinite(capital) and capital > 0):
        raise ConfigError(f"reconciliation: capital must be a number > 0, got {capital!r}")
    if proposals.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS[2:7], index=pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([]), pd.Index([], dtype=object)], names=["day", "symbol"]))
    frames = proposals if previous is None or previous.empty else pd.concat([previous, proposals])
    weights = _pivot(frames, "position")                                       # [days, symbols], NaN = absent
    counts = weights.notna().sum(axis=1).to_numpy(np.float64)                  # N_D
    price = _pivot(closes, "close").reindex(columns=weights.columns)           # [bar days, symbols]
    bar_days = price.index.union(weights.index)
    price = price.reindex(bar_days)
    p0 = price.ffill().reindex(weights.index)                                  # the last close <= D
    # Ex post on purpose: the bar the decision earns prices the unfilled part (opportunity cost).
    # Reconciliation is after-the-fact accounting of executed trades, never a model input.
    p1 = price.bfill().shift(-1).reindex(weights.index)                        # the first close > D
    missing = p0.isna() & weights.notna()
    if missing.to_numpy().any():
        day, symbol = missing.stack().loc[lambda m: m].index[0]
        raise DataValidationError(f"reconciliation: no close for {symbol} on or before {day.date()} "
                                  "to price its proposed position", table="series", column="close")
    w = weights.fillna(0.0).to_numpy()
    target = w * capital / counts[:, None] / np.where(np.isnan(p0.to_numpy()), 1.0, p0.to_numpy())
    start = 1 if previous is not None and not previous.empty else 0
    prior = np.vstack([np.zeros((1, w.shape[1])), target[:-1]])               # flat before the first day
    held = np.vstack([np.zeros((1, w.shape[1])), w[:-1]])
    shape = pd.MultiIndex.from_product([weights.index, weights.columns], names=["day", "symbol"])
    present = (weights.notna().to_numpy() | (held != 0))                       # in the frame, or leaving it
    table = pd.DataFrame({
        "position": w.ravel(), "previous_position": held.ravel(),
        "decision_price": p0.to_numpy().ravel(), "next_close": p1.to_numpy().ravel(),
        "intended_shares": (target - prior).ravel()}, index=shape)[present.ravel()]
    return table.loc[table.index.get_level_values("day") >= weights.index[start]]


def price_fills(orders: pd.DataFrame, fills: pd.DataFrame, cost_bps: float) -> pd.DataFrame:
    """`paper_orders` joined with ``fills`` (`fills.check_fills` rows: ``decision``, ``symbol``,
    ``signed_quantity``, ``price``, ``fee``; those of other decision days are ignored) and priced:
    columns ``TABLE_COLUMNS``. ``cost_bps`` is the evaluation's one-way cost (``simulated_cost``)."""
    table = orders
    keys = pd.MultiIndex.from_arrays([pd.DatetimeIndex(fills["decision"]), fills["symbol"].astype(str)],
                                     names=["day", "symbol"])
    qty = fills["signed_quantity"].to_numpy(np.float64)
    price = pd.to_numeric(fills["price"]).to_numpy(np.float64)
    agg = pd.DataFrame({"filled_shares": qty, "gross_shares": np.abs(qty), "paid": qty * price,
                        "value": np.abs(qty) * price, "fees": pd.to_numeric(fills["fee"]).to_numpy(np.float64),
                        "fills": 1}, index=keys).groupby(level=["day", "symbol"]).sum()
    t = table.join(agg, how="left")
    t[["filled_shares", "gross_shares", "paid", "value", "fees", "fills"]] = \
        t[["filled_shares", "gross_shares", "paid", "value", "fees", "fills"]].fillna(0.0)
    p0, p1 = t["decision_price"].to_numpy(), t["next_close"].to_numpy()
    intended, filled = t["intended_shares"].to_numpy(), t["filled_shares"].to_numpy()
    t["fills"] = t["fills"].astype(int)
    t["avg_fill_price"] = _safe_ratio(t["value"].to_numpy(), t["gross_shares"].to_numpy())
    t["intended_notional"] = np.abs(intended) * p0
    t["traded_notional"] = t["gross_shares"].to_numpy() * p0
    t["fill_rate"] = _safe_ratio(filled, intended)
    t["execution_cost"] = t["paid"].to_numpy() - filled * p0 + t["fees"].to_numpy()
    t["opportunity_cost"] = (intended - filled) * (p1 - p0)
    t["shortfall"] = t["execution_cost"] + t["opportunity_cost"]
    t["simulated_cost"] = cost_bps / BPS * t["intended_notional"]
    t["shortfall_bps"] = BPS * _safe_ratio(t["shortfall"].to_numpy(), t["intended_notional"].to_numpy())
    t["realised_cost_bps"] = BPS * _safe_ratio(t["execution_cost"].to_numpy(), t["traded_notional"].to_numpy())
    return t.reset_index()[TABLE_COLUMNS]
