"""Volume: log-volume z-score, relative volume, normalised OBV slope, Amihud illiquidity."""

from __future__ import annotations

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.registry import register

WINDOW = 20
LONG_WINDOW = 252


@register(name="logvol_z_20", depends_on=["volume"], lookback=WINDOW - 1, tags=["volume"],
          description="z-score of log(1 + volume) over 20 bars")
def logvol_z_20(ctx):
    lv = np.log1p(np.where(ctx["volume"] >= 0, ctx["volume"], np.nan))
    return k.safe_div(lv - k.rolling_mean(lv, WINDOW), k.rolling_std(lv, WINDOW))


@register(name="volume_ratio_20", depends_on=["volume"], lookback=WINDOW - 1, tags=["volume"],
          description="volume / its 20-bar mean")
def volume_ratio_20(ctx):
    return k.safe_div(ctx["volume"], k.rolling_mean(ctx["volume"], WINDOW))


@register(name="obv_slope_20", depends_on=["close", "volume"], lookback=WINDOW, tags=["volume"],
          description="20-bar change of on-balance volume / 20-bar volume, in [-1, 1]")
def obv_slope_20(ctx):
    close, vol = ctx["close"], ctx["volume"]
    # OBV_t - OBV_{t-20} is the 20-bar sum of signed volume: no long cumulative sum needed.
    # ta's sign convention: a down close counts -volume, anything else (incl. first bar) +volume.
    signed = np.where(close < k.shift(close, 1), -vol, vol)
    return k.safe_div(k.rolling_sum(signed, WINDOW), k.rolling_sum(vol, WINDOW))


@register(name="amihud_ratio_20_252", depends_on=["ret_1d", "close", "volume"],
          lookback=LONG_WINDOW, tags=["volume", "liquidity"],
          description="log of Amihud illiquidity |r|/(close·volume), 20-bar mean over 252-bar mean")
def amihud_ratio_20_252(ctx):
    dollar_volume = ctx["close"] * ctx["volume"]
    illiq = k.safe_div(np.abs(ctx["ret_1d"]), np.where(dollar_volume > 0, dollar_volume, np.nan))
    # zero-volume bars are left out of the means (NaN-skipping) instead of blanking a year
    short = k.rolling_mean(illiq, WINDOW, min_periods=WINDOW // 2)
    long = k.rolling_mean(illiq, LONG_WINDOW, min_periods=LONG_WINDOW // 2)
    return np.log(k.safe_div(short, long))
