"""Volatility: close-to-close and range-based estimators, ATR, Bollinger bands (all per bar)."""

from __future__ import annotations

from functools import partial

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.registry import register

LN2 = np.log(2.0)
ATR_WINDOW = 14
RANGE_WINDOW = 20


def true_range(ctx) -> np.ndarray:
    """``max(high, prev close) - min(low, prev close)``; ``high - low`` on a symbol's first bar."""
    def compute():
        high, low, prev = ctx["high"], ctx["low"], k.shift(ctx["close"], 1)
        # fmax/fmin skip the NaN previous close of the first bar, as ta does
        return np.fmax(high, prev) - np.fmin(low, prev)
    return ctx.memo("true_range", compute)


def _std(ctx, w: int):
    return k.rolling_std(ctx["ret_1d"], w)


for _w in (20, 60):
    register(name=f"vol_std_{_w}", depends_on=["ret_1d"], lookback=_w,
             tags=["volatility"], description=f"{_w}-bar std of ret_1d (ddof=1)")(partial(_std, w=_w))


@register(name="vol_ratio_20_60", depends_on=["vol_std_20", "vol_std_60"], lookback=60,
          tags=["volatility"], description="vol_std_20 / vol_std_60 (volatility regime)")
def vol_ratio_20_60(ctx):
    return k.safe_div(ctx["vol_std_20"], ctx["vol_std_60"])


def _log_hl(ctx):
    return ctx.memo("log_hl", lambda: np.log(k.safe_div(ctx["high"], ctx["low"])))


@register(name="vol_parkinson_20", depends_on=["high", "low"], lookback=RANGE_WINDOW - 1,
          tags=["volatility", "range"], description="Parkinson high-low volatility, 20 bars")
def vol_parkinson_20(ctx):
    hl = _log_hl(ctx)
    return np.sqrt(k.rolling_mean(hl * hl, RANGE_WINDOW) / (4.0 * LN2))


@register(name="vol_garman_klass_20", depends_on=["open", "high", "low", "close"],
          lookback=RANGE_WINDOW - 1, tags=["volatility", "range"],
          description="Garman-Klass OHLC volatility, 20 bars")
def vol_garman_klass_20(ctx):
    hl = _log_hl(ctx)
    co = np.log(k.safe_div(ctx["close"], ctx["open"]))
    var = k.rolling_mean(0.5 * hl * hl - (2.0 * LN2 - 1.0) * co * co, RANGE_WINDOW)
    return np.sqrt(np.maximum(var, 0.0))


def _rogers_satchell_terms(ctx):
    def compute():
        o, h, l, c = ctx["open"], ctx["high"], ctx["low"], ctx["close"]
        hc, ho = np.log(k.safe_div(h, c)), np.log(k.safe_div(h, o))
        lc, lo = np.log(k.safe_div(l, c)), np.log(k.safe_div(l, o))
        return hc * ho + lc * lo
    return ctx.memo("rogers_satchell", compute)


@register(name="vol_rogers_satchell_20", depends_on=["open", "high", "low", "close"],
          lookback=RANGE_WINDOW - 1, tags=["volatility", "range"],
          description="Rogers-Satchell drift-free OHLC volatility, 20 bars")
def vol_rogers_satchell_20(ctx):
    return np.sqrt(np.maximum(k.rolling_mean(_rogers_satchell_terms(ctx), RANGE_WINDOW), 0.0))


@register(name="vol_yang_zhang_20", depends_on=["open", "high", "low", "close"],
          lookback=RANGE_WINDOW, tags=["volatility", "range"],
          description="Yang-Zhang volatility (overnight + open-close + Rogers-Satchell), 20 bars")
def vol_yang_zhang_20(ctx):
    n = RANGE_WINDOW
    overnight = np.log(k.safe_div(ctx["open"], k.shift(ctx["close"], 1)))
    open_close = np.log(k.safe_div(ctx["close"], ctx["open"]))
    kk = 0.34 / (1.34 + (n + 1.0) / (n - 1.0))
    var = (k.rolling_var(overnight, n) + kk * k.rolling_var(open_close, n)
           + (1.0 - kk) * k.rolling_mean(_rogers_satchell_terms(ctx), n))
    return np.sqrt(np.maximum(var, 0.0))


@register(name="atr_14", depends_on=["high", "low", "close"],
          lookback=ATR_WINDOW - 1 + k.warmup_rows(1.0 / ATR_WINDOW), tags=["volatility", "range"],
          description="Average true range (Wilder, 14) / close")
def atr_14(ctx):
    return k.safe_div(k.wilder(true_range(ctx), ATR_WINDOW), ctx["close"])


def _bollinger(ctx, w: int = 20, n_std: float = 2.0):
    def compute():
        close = ctx["close"]
        return k.rolling_mean(close, w), n_std * k.rolling_std(close, w, ddof=0)
    return ctx.memo(f"bollinger_{w}", compute)


@register(name="bb_pctb_20", depends_on=["close"], lookback=19, tags=["volatility", "bands"],
          description="Bollinger %B: position of close between the 20-bar ±2σ bands")
def bb_pctb_20(ctx):
    mid, band = _bollinger(ctx)
    return k.safe_div(ctx["close"] - (mid - band), 2.0 * band)


@register(name="bb_width_20", depends_on=["close"], lookback=19, tags=["volatility", "bands"],
          description="Bollinger band width (upper - lower) / middle, 20 bars")
def bb_width_20(ctx):
    mid, band = _bollinger(ctx)
    return k.safe_div(2.0 * band, mid)
