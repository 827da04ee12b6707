"""Oscillators: RSI, MACD (price-normalised), stochastic %K/%D, CCI, Williams %R."""

from __future__ import annotations

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.families.trend import ema
from plusultra_core.features.registry import register

RSI_WINDOW = 14
STOCH_WINDOW, STOCH_SMOOTH = 14, 3
CCI_WINDOW, CCI_CONSTANT = 20, 0.015
WILLIAMS_WINDOW = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9


@register(name="rsi_14", depends_on=["close"], lookback=1 + k.warmup_rows(1.0 / RSI_WINDOW),
          tags=["oscillator"], description="Relative strength index (Wilder, 14) / 100, in [0, 1]")
def rsi_14(ctx):
    diff = ctx["close"] - k.shift(ctx["close"], 1)
    # as ta: the first bar's missing diff counts as no move (0), so smoothing starts at row 0
    up = np.where(diff > 0, diff, 0.0)
    down = np.where(diff < 0, -diff, 0.0)
    avg_up = k.ewm(up, alpha=1.0 / RSI_WINDOW, min_periods=RSI_WINDOW)
    avg_down = k.ewm(down, alpha=1.0 / RSI_WINDOW, min_periods=RSI_WINDOW)
    rsi = 1.0 - 1.0 / (1.0 + k.safe_div(avg_up, avg_down))
    # no down-moves: RSI is 1 (ta gives 100) unless there were no moves at all (neutral 0.5)
    rsi = np.where(avg_down == 0, np.where(avg_up == 0, 0.5, 1.0), rsi)
    return np.where(np.isfinite(avg_up) & np.isfinite(avg_down), rsi, np.nan)


def _macd(ctx) -> tuple[np.ndarray, np.ndarray]:
    def compute():
        line = ema(ctx, MACD_FAST) - ema(ctx, MACD_SLOW)
        return line, k.ewm(line, span=MACD_SIGNAL, min_periods=MACD_SIGNAL)
    return ctx.memo("macd", compute)


_MACD_LOOKBACK = k.warmup_rows(2.0 / (MACD_SLOW + 1))


@register(name="macd_line", depends_on=["close"], lookback=_MACD_LOOKBACK, tags=["oscillator", "macd"],
          description="MACD line (EMA12 - EMA26) / close")
def macd_line(ctx):
    return k.safe_div(_macd(ctx)[0], ctx["close"])


@register(name="macd_signal", depends_on=["close"],
          lookback=_MACD_LOOKBACK + k.warmup_rows(2.0 / (MACD_SIGNAL + 1)),
          tags=["oscillator", "macd"], description="MACD signal line (EMA9 of MACD) / close")
def macd_signal(ctx):
    return k.safe_div(_macd(ctx)[1], ctx["close"])


@register(name="macd_hist", depends_on=["close"],
          lookback=_MACD_LOOKBACK + k.warmup_rows(2.0 / (MACD_SIGNAL + 1)),
          tags=["oscillator", "macd"], description="MACD histogram (line - signal) / close")
def macd_hist(ctx):
    line, sig = _macd(ctx)
    return k.safe_div(line - sig, ctx["close"])


def _stoch_k(ctx) -> np.ndarray:
    def compute():
        low = k.rolling_min(ctx["low"], STOCH_WINDOW)
        high = k.rolling_max(ctx["high"], STOCH_WINDOW)
        return k.safe_div(ctx["close"] - low, high - low)
    return ctx.memo("stoch_k", compute)


@register(name="stoch_k_14", depends_on=["high", "low", "close"], lookback=STOCH_WINDOW - 1,
          tags=["oscillator"], description="Stochastic %K (14) / 100, in [0, 1]")
def stoch_k_14(ctx):
    return _stoch_k(ctx)


@register(name="stoch_d_14", depends_on=["high", "low", "close"],
          lookback=STOCH_WINDOW + STOCH_SMOOTH - 2, tags=["oscillator"],
          description="Stochastic %D: 3-bar mean of %K (14) / 100")
def stoch_d_14(ctx):
    return k.rolling_mean(_stoch_k(ctx), STOCH_SMOOTH)


@register(name="cci_20", depends_on=["high", "low", "close"], lookback=CCI_WINDOW - 1,
          tags=["oscillator"], description="Commodity channel index (20, 0.015) / 100")
def cci_20(ctx):
    tp = (ctx["high"] + ctx["low"] + ctx["close"]) / 3.0
    dev = tp - k.rolling_mean(tp, CCI_WINDOW)
    return k.safe_div(dev, CCI_CONSTANT * k.rolling_mad(tp, CCI_WINDOW)) / 100.0


@register(name="williams_r_14", depends_on=["high", "low", "close"], lookback=WILLIAMS_WINDOW - 1,
          tags=["oscillator"], description="Williams %R (14) / 100, in [-1, 0]")
def williams_r_14(ctx):
    high = k.rolling_max(ctx["high"], WILLIAMS_WINDOW)
    low = k.rolling_min(ctx["low"], WILLIAMS_WINDOW)
    return -k.safe_div(high - ctx["close"], high - low)
