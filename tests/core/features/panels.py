"""Tiny in-memory panels in the feature-input format, built with numpy (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MKT_COLUMNS = ("mkt_vix_close", "mkt_wti_close", "mkt_core_cpi_value", "mkt_ff_mkt_rf")


def random_panel(n_symbols: int = 3, n_days: int = 320, seed: int = 0, *,
                 ragged: bool = True, mkt: bool = True) -> pd.DataFrame:
    """Random-walk OHLCV for ``n_symbols`` on business days, plus market-wide series.

    With ``ragged``, symbols start on different days and each misses a few random days, so
    their calendars differ (as real symbols' do). Market series are shared per date, forward
    filled like the as-of join does, and start late (leading NaN) for early symbols.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2001-01-02", periods=n_days)
    t, s = n_days, n_symbols
    close = 50.0 * np.exp(np.cumsum(0.015 * rng.standard_normal((t, s)), axis=0)) * (1 + np.arange(s))
    open_ = close * np.exp(0.004 * rng.standard_normal((t, s)))
    high = np.maximum(open_, close) * np.exp(np.abs(0.006 * rng.standard_normal((t, s))))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.006 * rng.standard_normal((t, s))))
    volume = rng.lognormal(11.0, 0.6, (t, s)).round()
    symbols = [f"SYM{i}" for i in range(s)]
    idx = pd.MultiIndex.from_product([dates, symbols], names=["timestamp", "symbol"])
    frame = pd.DataFrame({"open": open_.ravel(), "high": high.ravel(), "low": low.ravel(),
                          "close": close.ravel(), "volume": volume.ravel()}, index=idx)
    if mkt:
        vix = 18.0 * np.exp(np.cumsum(0.05 * rng.standard_normal(t)))
        wti = 30.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(t)))
        month = dates.to_period("M").to_timestamp()
        month_codes, _ = pd.factorize(month)
        cpi = 180.0 * np.exp(np.cumsum(0.002 + 0.001 * rng.standard_normal(month_codes.max() + 1)))[month_codes]
        ff = (0.01 * rng.standard_normal(month_codes.max() + 1))[month_codes]
        late = int(rng.integers(0, 20))                  # market data starts a bit late
        for name, series in zip(MKT_COLUMNS, (vix, wti, cpi, ff)):
            series = series.copy()
            series[:late] = np.nan
            frame[name] = np.repeat(series, s)
    if ragged:
        keep = np.ones(len(frame), dtype=bool)
        sym_pos = np.tile(np.arange(s), t)
        day_pos = np.repeat(np.arange(t), s)
        starts = rng.integers(0, max(1, t // 10), s)
        starts[0] = 0
        keep &= day_pos >= starts[sym_pos]
        keep &= rng.random(len(frame)) > 0.03           # random missing bars
        keep[sym_pos == 0] = True                        # one full-calendar symbol
        frame = frame[keep]
    return frame


def single_symbol(panel: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Rows of one symbol, still in the (timestamp, symbol) panel format."""
    return panel[panel.index.get_level_values("symbol") == symbol]
