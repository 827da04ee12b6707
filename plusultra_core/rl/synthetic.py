"""Synthetic markets for the RL tests and `bench/bench_rl.py`: a planted tradable signal, or a random walk.

Per symbol a persistent AR(1) signal ``z_t`` (unit variance, ``phi`` per day) is observed at the
close of t as the feature ``signal``; the next bar's return is
``r_{t+1} = sigma * (edge * z_t + sqrt(1 - edge**2) * eps_{t+1})`` (``edge = 0``: a random walk,
the feature is then pure noise). Two more features are noise and the bar's own return in sigma
units. ``close``/``volume`` make the simulator's impact and volume cap real: a bar trades
``dollar_volume`` around ``$3e7`` against a ``$1e6`` book, so a full position change is ~3% of
the bar (impact ``10 bps * sqrt(0.03)`` per unit traded, on top of fee and spread).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["signal", "noise", "ret_sigma"]


def synthetic_frame(n_symbols: int = 6, n_days: int = 1400, edge: float = 0.15, phi: float = 0.9,
                    sigma: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """A window frame (timestamp, symbol, FEATURES float32, ret_1d, valid, close, volume)."""
    rng = np.random.default_rng(seed)
    z = np.zeros((n_symbols, n_days))
    shocks = rng.standard_normal((n_symbols, n_days))
    z[:, 0] = shocks[:, 0]
    for t in range(1, n_days):  # the AR recursion is sequential in time (test data only), vectorised over symbols
        z[:, t] = phi * z[:, t - 1] + np.sqrt(1 - phi ** 2) * shocks[:, t]
    eps = rng.standard_normal((n_symbols, n_days))
    ret = np.zeros((n_symbols, n_days))                      # ret[:, t] = return INTO bar t
    ret[:, 1:] = sigma * (edge * z[:, :-1] + np.sqrt(1 - edge ** 2) * eps[:, 1:])
    close = 100.0 * np.cumprod(1.0 + ret, axis=1)
    dollar_volume = 3e7 * np.exp(0.3 * rng.standard_normal((n_symbols, n_days)))
    days = pd.bdate_range("2001-01-01", periods=n_days)
    frame = pd.DataFrame({"timestamp": np.tile(days.values, n_symbols),
                          "symbol": np.repeat([f"S{i}" for i in range(n_symbols)], n_days)})
    frame["signal"] = z.ravel().astype(np.float32)
    frame["noise"] = rng.standard_normal(n_symbols * n_days).astype(np.float32)
    frame["ret_sigma"] = (ret / sigma).ravel().astype(np.float32)
    frame["ret_1d"] = ret.ravel().astype(np.float32)
    frame["valid"] = True
    frame["close"] = close.ravel()
    frame["volume"] = (dollar_volume / close).ravel()
    return frame
