"""Synthetic window frames with a planted predictable component, for the training tests.

Returns per symbol follow an AR(1): ``r_t = phi * r_{t-1} + sigma * eps_t`` (zero drift, so
always-long earns nothing on average while the sign of yesterday's return predicts today's).
Features are the bar's own return and two more lags in units of sigma (O(1) inputs): ``lag_1`` at
row t is r_t, known at the close of t, so the window ending at t predicts r_{t+1}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["lag_1", "lag_2", "lag_3"]


def ar1_frame(n_symbols: int = 4, n_days: int = 1200, phi: float = 0.4, sigma: float = 0.01,
              seed: int = 0) -> pd.DataFrame:
    """A `build_window_frame`-shaped frame: timestamp, symbol, lag_1..3 (float32), ret_1d, valid."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_days, n_symbols)) * sigma                     # [T, S]
    r = np.zeros_like(eps)
    r[0] = eps[0]
    for t in range(1, n_days):  # the AR recursion is sequential in time (test data only)
        r[t] = phi * r[t - 1] + eps[t]
    lags = [r]
    for k in (1, 2):
        lags.append(np.vstack([np.full((k, n_symbols), np.nan), r[:-k]]))
    days = pd.bdate_range("2001-01-01", periods=n_days)
    frame = pd.DataFrame({"timestamp": np.tile(days.values, n_symbols),
                          "symbol": np.repeat([f"S{i}" for i in range(n_symbols)], n_days)})
    valid = np.ones(len(frame), dtype=bool)
    for name, lag in zip(FEATURES, lags):
        col = (lag.T.ravel() / sigma).astype(np.float32)                       # symbol-major rows
        valid &= np.isfinite(col)
        frame[name] = np.where(np.isfinite(col), col, np.float32(0.0))
    frame["ret_1d"] = r.T.ravel().astype(np.float32)
    frame["valid"] = valid
    return frame


def smooth_frame(n_symbols: int = 3, n_days: int = 800, seed: int = 0) -> pd.DataFrame:
    """Frame whose features are slow exponential moving averages of one noise stream per symbol
    (unit variance): a masked cell is well predicted by its neighbours in time and by the other
    features, the structure masked pretraining should learn."""
    frame = ar1_frame(n_symbols, n_days, seed=seed)
    rng = np.random.default_rng(seed + 100)
    noise = rng.standard_normal((n_symbols, n_days, 1)).repeat(len(FEATURES), axis=2)
    smooth = np.empty_like(noise)
    alphas = np.array([0.05, 0.1, 0.2])                                        # one decay per feature
    smooth[:, 0] = noise[:, 0]
    for t in range(1, n_days):  # EMA recursion along time (test data only)
        smooth[:, t] = (1 - alphas) * smooth[:, t - 1] + alphas * noise[:, t]
    smooth /= smooth.std(axis=1, keepdims=True)
    for j, name in enumerate(FEATURES):
        frame[name] = smooth[:, :, j].ravel().astype(np.float32)             # symbol-major rows
    frame["valid"] = True
    return frame
