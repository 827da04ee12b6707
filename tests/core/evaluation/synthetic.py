"""Small synthetic window frames for evaluation tests, built with numpy in the window-frame format."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["f_signal", "f_noise"]


def make_frame(n_symbols: int = 3, n_days: int = 160, seed: int = 0,
               start: str = "2020-01-01") -> pd.DataFrame:
    """Window frame ``[timestamp, symbol, f_signal, f_noise, ret_1d, valid]`` sorted by (symbol, timestamp).

    Weekday calendar shared by all symbols; ``ret_1d`` is NaN on each symbol's first bar (no
    previous close) and that row is invalid; ``f_signal`` carries part of the next bar's return
    (a predictable component), ``f_noise`` is pure noise.
    """
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n_days, freq="B").as_unit("ns")
    parts = []
    for s in range(n_symbols):
        signal = rng.normal(0, 1, n_days)
        ret = 0.002 * np.roll(signal, 1) + rng.normal(0, 0.01, n_days)  # ret_t depends on signal_{t-1}
        ret[0] = np.nan
        parts.append(pd.DataFrame({
            "timestamp": ts, "symbol": f"S{s}",
            "f_signal": signal.astype(np.float32), "f_noise": rng.normal(0, 1, n_days).astype(np.float32),
            "ret_1d": ret.astype(np.float32), "valid": np.isfinite(ret),
        }))
    return pd.concat(parts, ignore_index=True)


def perfect_foresight(frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions holding sign(next bar's ret_1d) with expected_return = next bar's ret_1d."""
    nxt = frame.groupby("symbol")["ret_1d"].shift(-1).astype(np.float64)
    return pd.DataFrame({"timestamp": frame["timestamp"], "symbol": frame["symbol"],
                         "position": np.sign(nxt).fillna(0.0), "expected_return": nxt})
