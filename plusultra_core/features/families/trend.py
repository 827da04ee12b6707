"""Trend: price relative to moving averages, EMA crossovers, ADX / directional indicators."""

from __future__ import annotations

from functools import partial

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.families.volatility import true_range
from plusultra_core.features.registry import register

ADX_WINDOW = 14


def ema(ctx, span: int) -> np.ndarray:
    """EMA of close with ``ta``'s convention (``adjust=False``, NaN before ``span`` bars)."""
    return ctx.memo(f"ema_close_{span}", lambda: k.ewm(ctx["close"], span=span, min_periods=span))


def _sma_ratio(ctx, n: int):
    close = ctx["close"]
    return k.safe_div(close, k.rolling_mean(close, n)) - 1.0


for _n in (20, 50, 200):
    register(name=f"sma_ratio_{_n}", depends_on=["close"], lookback=_n - 1, tags=["trend"],
             description=f"close / SMA({_n}) - 1")(partial(_sma_ratio, n=_n))


def _ema_cross(ctx, fast: int, slow: int):
    return k.safe_div(ema(ctx, fast), ema(ctx, slow)) - 1.0


for _fast, _slow in ((5, 20), (12, 26)):
    register(name=f"ema_cross_{_fast}_{_slow}", depends_on=["close"],
             lookback=k.warmup_rows(2.0 / (_slow + 1)), tags=["trend"],
             description=f"EMA({_fast}) / EMA({_slow}) - 1")(partial(_ema_cross, fast=_fast, slow=_slow))


def directional(ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's +DI, -DI (in [0, 1]) and ADX (in [0, 1]) over ``ADX_WINDOW`` bars.

    +DM = up-move if it beats the down-move and is positive (else 0), -DM symmetric; both and
    the true range are Wilder-smoothed from each symbol's second bar (the first has no previous
    bar), DX = |+DI - -DI| / (+DI + -DI), and ADX is DX Wilder-smoothed again.
    """
    def compute():
        n = ADX_WINDOW
        high, low = ctx["high"], ctx["low"]
        up = high - k.shift(high, 1)
        down = k.shift(low, 1) - low
        plus_dm = np.where((up > down) & (up > 0), up, 0.0)
        minus_dm = np.where((down > up) & (down > 0), down, 0.0)
        tr = true_range(ctx).copy()
        first = ~np.isfinite(up)                      # first bar: no previous bar -> no DM
        plus_dm[first] = minus_dm[first] = tr[first] = np.nan
        atr = k.wilder(tr, n)
        plus_di = k.safe_div(k.wilder(plus_dm, n), atr)
        minus_di = k.safe_div(k.wilder(minus_dm, n), atr)
        dx = k.safe_div(np.abs(plus_di - minus_di), plus_di + minus_di)
        return plus_di, minus_di, k.wilder(dx, n)
    return ctx.memo("directional", compute)


# DM and TR start at a symbol's second bar, each Wilder smoothing is seeded by the mean of its
# first ADX_WINDOW inputs (rows 1..14 for +DI/-DI, rows 14..27 for ADX); after that the error of
# a wrong start decays as one Wilder filter (DI) or a cascade of two (ADX, each seed error
# counted once: tolerance halved).
_DI_LOOKBACK = ADX_WINDOW + k.warmup_rows(1.0 / ADX_WINDOW)
_ADX_LOOKBACK = 2 * ADX_WINDOW - 1 + k.warmup_rows(1.0 / ADX_WINDOW, k.WARMUP_TOL / 2, stages=2)


@register(name="adx_14", depends_on=["high", "low", "close"], lookback=_ADX_LOOKBACK,
          tags=["trend"], description="Average directional index (Wilder, 14) / 100, in [0, 1]")
def adx_14(ctx):
    return directional(ctx)[2]


@register(name="di_diff_14", depends_on=["high", "low", "close"],
          lookback=_DI_LOOKBACK, tags=["trend"],
          description="(+DI - -DI) / 100 (Wilder, 14), in [-1, 1]")
def di_diff_14(ctx):
    plus_di, minus_di, _ = directional(ctx)
    return plus_di - minus_di
