"""Long bar frame -> the simulator's dense ``[S, T]`` market arrays, aligned the `pnl_stream` way.

The window frame and the feature/bar panels are long: one row per (symbol, timestamp) with
``ret_1d = close_t / close_{t-1} - 1`` (the return *into* bar t). The simulator wants, per bar t,
the return earned by the position decided at t's close: the same symbol's *next* bar's ``ret_1d``.
`market_arrays` pivots onto the union timestamp grid and shifts once, here, so no caller aligns
by hand. A grid bar a symbol lacks has dollar volume 0 (nothing can trade there under a volume
cap) and return 0; the next real bar's ``ret_1d`` spans the gap, so a held position still earns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MarketArrays", "market_arrays"]


@dataclass(frozen=True)
class MarketArrays:
    """Dense market inputs of `simulate` (``S`` symbols, ``T`` grid bars).

    symbols:       [S] names, sorted.
    timestamps:    [T] datetime64[ns] decision times (bar closes), increasing.
    returns:       [S, T] next-bar return earned by the position decided at t (0 where unknown).
    dollar_volume: [S, T] ``price * volume`` of bar t (0 where the symbol has no bar), or None.
    has_next:      [S, T] bool, a real next-bar return exists (False on the last bar and gaps).
    """

    symbols: np.ndarray
    timestamps: np.ndarray
    returns: np.ndarray
    dollar_volume: np.ndarray | None
    has_next: np.ndarray


def market_arrays(frame: pd.DataFrame, return_column: str = "ret_1d", price_column: str | None = "close",
                  volume_column: str | None = "volume") -> MarketArrays:
    """Pivot a long bar frame (``timestamp``/``symbol`` as columns or index levels) to `MarketArrays`.

    ``price_column``/``volume_column`` None (or absent from the frame when both are left at their
    defaults) gives ``dollar_volume=None``: enough for runs without impact or a volume cap.

    Raises:
        ValueError: a missing column or a duplicated (symbol, timestamp).
    """
    df = frame.reset_index() if "symbol" not in frame.columns else frame
    use_volume = price_column is not None and volume_column is not None
    if use_volume and {price_column, volume_column} - set(df.columns) \
            and (price_column, volume_column) == ("close", "volume"):
        use_volume = False                                    # a window frame: returns only
    needed = ["timestamp", "symbol", return_column] + ([price_column, volume_column] if use_volume else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"market_arrays: columns missing from the frame: {missing}")
    ts = pd.to_datetime(df["timestamp"]).to_numpy().astype("datetime64[ns]")
    s_codes, symbols = pd.factorize(df["symbol"].astype(str), sort=True)
    t_codes, grid = pd.factorize(ts, sort=True)
    n_s, n_t = len(symbols), len(grid)
    flat = s_codes.astype(np.int64) * n_t + t_codes
    if np.unique(flat).size != flat.size:
        raise ValueError("market_arrays: duplicated (symbol, timestamp) rows")

    ret_in = np.full((n_s, n_t), np.nan)                      # [S, T] return into bar t
    ret_in[s_codes, t_codes] = df[return_column].to_numpy(dtype=np.float64, na_value=np.nan)
    nxt = np.full((n_s, n_t), np.nan)
    nxt[:, :-1] = ret_in[:, 1:]                               # [S, T] return earned holding through t
    has_next = np.isfinite(nxt)
    dvol = None
    if use_volume:
        dvol = np.zeros((n_s, n_t))
        value = df[price_column].to_numpy(dtype=np.float64) * df[volume_column].to_numpy(dtype=np.float64)
        dvol[s_codes, t_codes] = np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)
    return MarketArrays(symbols=np.asarray(symbols, dtype=object), timestamps=np.asarray(grid),
                        returns=np.where(has_next, nxt, 0.0), dollar_volume=dvol, has_next=has_next)
