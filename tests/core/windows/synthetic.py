"""Small synthetic panels for window tests: random-walk closes, ragged histories, NaN holes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_panel(n_symbols: int = 3, n_days: int = 120, seed: int = 0, holes: bool = True) -> pd.DataFrame:
    """Panel indexed (timestamp, symbol) sorted by (timestamp, symbol) with close and three features.

    Symbols start on different days (ragged), ``ret_1d`` is close_t / close_{t-1} - 1 per symbol
    (NaN on each symbol's first bar), ``ma_ratio_5`` has a 4-bar NaN warm-up, and with ``holes``
    one feature has a NaN hole in the middle of symbol 0's history.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_symbols):
        start = pd.Timestamp("2020-01-01") + pd.offsets.BDay(7 * s)
        ts = pd.date_range(start, periods=n_days - 5 * s, freq="B").as_unit("ns")
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(ts))))
        df = pd.DataFrame({"timestamp": ts, "symbol": f"S{s}", "close": close})
        df["ret_1d"] = df["close"] / df["close"].shift(1) - 1
        df["ma_ratio_5"] = df["close"] / df["close"].rolling(5).mean() - 1
        df["noise"] = rng.normal(size=len(ts))
        if holes and s == 0:
            df.loc[40:42, "noise"] = np.nan
        frames.append(df)
    panel = pd.concat(frames, ignore_index=True).set_index(["timestamp", "symbol"]).sort_index()
    return panel


FEATURES = ["ret_1d", "ma_ratio_5", "noise"]
