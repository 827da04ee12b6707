"""A seeded, clearly labelled SYNTHETIC fill log for the demo database's ``trades`` table.

No real executions ship with the demo data, so `build_demo_database` writes these so that the
reconciliation (`plusultra reconcile`, the ``trade_reconciliation`` asset) has fills to price.
They are tagged ``strategy = 'synthetic_demo'`` and come from a simple desk that does *not* follow
the model: each trading day ``D`` it targets ``sign(20-bar return) * capital / N`` per symbol (a
trend rule), and on the next trading day it trades toward that target at the open, filling a
random 70-100 % of the order, paying 1-10 bps of slippage against it (inside the day's low-high)
and a fee of 0.5 bps + 1.0. Each fill names the decision day it executes. Reconciling them against
the model's proposals therefore shows partial fills, fills against the paper order and a realised
cost above the evaluation's flat one -- what a reconciliation is for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SYNTHETIC_STRATEGY = "synthetic_demo"
FIRST_DAY = "2018-01-02"    # the demo's inference days start here (configs/pipeline.yaml inference.first_day)
CAPITAL = 1_000_000.0       # configs/pipeline.yaml reconciliation.capital
TREND_BARS = 20
FILL_COLUMNS = ["trade_id", "timestamp", "symbol", "side", "quantity", "price", "fee", "strategy",
                "decision_timestamp"]


def synthetic_fills(candles: dict[str, pd.DataFrame], *, first_day: str = FIRST_DAY, seed: int = 7,
                    capital: float = CAPITAL) -> pd.DataFrame:
    """Fill rows (``FILL_COLUMNS``) for decision days from ``first_day`` on; ``candles`` maps a
    tradable symbol to its repaired OHLCV frame indexed by date. Vectorised over symbols x days."""
    close = pd.DataFrame({s: df["close"] for s, df in candles.items()}).sort_index()
    opens = pd.DataFrame({s: df["open"] for s, df in candles.items()}).reindex(close.index)
    high = pd.DataFrame({s: df["high"] for s, df in candles.items()}).reindex(close.index)
    low = pd.DataFrame({s: df["low"] for s, df in candles.items()}).reindex(close.index)
    live = close.notna() & close.shift(-1).notna()                             # a bar today and tomorrow
    trend = np.sign(close / close.shift(TREND_BARS) - 1.0).where(live, 0.0).fillna(0.0)
    n = live.sum(axis=1).replace(0, np.nan)
    target = (trend.mul(capital / n, axis=0) / close).fillna(0.0)              # [days, symbols] shares
    # decision rows that have a next trading day (the fill day)
    rows = np.nonzero((close.index >= pd.Timestamp(first_day))[:-1])[0]
    target = target.to_numpy()[rows]
    order = np.diff(target, axis=0, prepend=np.zeros((1, target.shape[1])))   # flat before the first day
    rng = np.random.default_rng(seed)
    filled = order * rng.uniform(0.7, 1.0, order.shape)
    qty = np.floor(np.abs(filled) * 100) / 100                                 # shares to 0.01
    side = np.sign(filled)
    fill_day = close.index[rows + 1]
    o, h, lo = (f.to_numpy()[rows + 1] for f in (opens, high, low))
    slip = rng.uniform(1.0, 10.0, qty.shape) * 1e-4                            # against the order
    price = np.clip(o * (1.0 + side * slip), lo, h)
    ok = (qty > 0) & np.isfinite(price) & (price > 0)
    d_idx, s_idx = np.nonzero(ok)
    notional = qty[d_idx, s_idx] * price[d_idx, s_idx]
    return pd.DataFrame({
        "trade_id": np.arange(1, len(d_idx) + 1),
        "timestamp": fill_day[d_idx].strftime("%Y-%m-%d") + " 09:45:00",
        "symbol": np.asarray(close.columns)[s_idx],
        "side": np.where(side[d_idx, s_idx] > 0, "buy", "sell"),
        "quantity": qty[d_idx, s_idx],
        "price": np.round(price[d_idx, s_idx], 4),
        "fee": np.round(0.5e-4 * notional + 1.0, 4),
        "strategy": SYNTHETIC_STRATEGY,
        "decision_timestamp": close.index[rows][d_idx].strftime("%Y-%m-%d"),
    })[FILL_COLUMNS]
