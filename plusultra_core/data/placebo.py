"""Placebo databases: the same market with its bars shuffled in time, so nothing is predictable.

`permute_bars_in_time` copies a contract database and, per symbol, applies one random permutation
to its bar-to-bar moves: the close-to-close log return and the bar's own shape (open, high, low
relative to its close, and volume) travel together, so every bar stays a consistent OHLC bar and
the return distribution (drift, volatility, fat tails) is unchanged, while any dependence on the
past -- momentum, volatility clustering, calendar effects, lead-lag -- is destroyed. With
``demean`` (the default) each symbol's mean log return is also removed, so even buy-and-hold has
no expected edge: a significant out-of-sample Sharpe ratio or IC on such a database is a bug
(look-ahead, a leak), not a signal.

Timestamps, `assets`, `indicators` and `benchmarks` are left as they are. The copy is written to a
temporary file beside ``dst`` and moved into place when complete (`plusultra_core.atomic`).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core import atomic
from plusultra_core.data.contract import SERIES, open_readonly
from plusultra_core.data.sqlite_writer import check_destination

_COLUMNS = ("open", "high", "low", "close", "volume")


def permuted_bars(bars: pd.DataFrame, seed: int = 0, demean: bool = True) -> pd.DataFrame:
    """``bars`` (symbol, timestamp, OHLCV; sorted by symbol then time) with moves shuffled in time.

    Each symbol keeps its first close; bar ``k > 0`` gets the move and shape of bar ``perm(k)``.
    Vectorised over symbols: one lexsort by (symbol, random key) draws every permutation at once.
    """
    sym = bars["symbol"].to_numpy()
    close = bars["close"].to_numpy(dtype=np.float64)
    n = len(bars)
    first = np.ones(n, dtype=bool)
    first[1:] = sym[1:] != sym[:-1]                                   # [N] each symbol's first bar
    logret = np.zeros(n)
    logret[~first] = np.log(close[1:][~first[1:]] / close[:-1][~first[1:]])
    shape = np.column_stack([bars["open"], bars["high"], bars["low"]]).astype(np.float64) / close[:, None]
    volume = bars["volume"].to_numpy(dtype=np.float64)

    rng = np.random.default_rng(seed)
    key = np.where(first, -1.0, rng.random(n))                        # first bars stay first
    order = np.lexsort((key, pd.factorize(sym)[0]))                   # [N] source row of each slot
    group = np.cumsum(first) - 1
    new_ret = np.where(first, 0.0, logret[order])
    if demean:  # zero drift per symbol: the placebo's buy-and-hold has no edge to earn either
        counts = np.maximum(np.bincount(group) - 1, 1)
        drift = np.bincount(group, weights=logret) / counts
        new_ret = np.where(first, 0.0, new_ret - drift[group])
    cum = np.cumsum(new_ret)
    base = cum[np.flatnonzero(first)][group]                          # per symbol cumulative offset
    new_close = close[np.flatnonzero(first)][group] * np.exp(cum - base)
    out = bars.copy()
    out["close"] = new_close
    out[["open", "high", "low"]] = shape[order] * new_close[:, None]
    out["volume"] = np.where(first, volume, volume[order])
    # keep the contract's OHLC consistency exactly despite floating-point round-off
    out["high"] = np.maximum.reduce([out["high"], out["open"], out["close"]])
    out["low"] = np.minimum.reduce([out["low"], out["open"], out["close"]])
    return out


def permute_bars_in_time(src: str | Path, dst: str | Path, *, seed: int = 0, demean: bool = True,
                         overwrite: bool = False) -> Path:
    """Write a placebo copy of ``src`` to ``dst`` (see the module docstring); return ``dst``."""
    dst = check_destination(dst, overwrite=overwrite)
    conn = open_readonly(src)
    try:
        bars = pd.read_sql(f"SELECT rowid, symbol, timestamp, {', '.join(_COLUMNS)} FROM {SERIES} "
                           "ORDER BY symbol, timestamp", conn)
    finally:
        conn.close()
    shuffled = permuted_bars(bars.drop(columns="rowid"), seed=seed, demean=demean)
    with atomic.staged_path(dst) as tmp:
        shutil.copyfile(src, tmp)
        conn = sqlite3.connect(tmp)
        try:
            rows = zip(*(shuffled[c].astype(float).tolist() for c in _COLUMNS), bars["rowid"].tolist())
            with conn:  # one transaction
                conn.executemany(f"UPDATE {SERIES} SET {', '.join(f'{c} = ?' for c in _COLUMNS)} "
                                 "WHERE rowid = ?", rows)
        finally:
            conn.close()
    return dst
