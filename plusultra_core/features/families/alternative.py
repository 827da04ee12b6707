"""Alternative data from market-wide series (as-of joined ``mkt_*`` columns).

Skipped automatically when the panel lacks the series. Market series are forward filled by the
as-of join upstream; here values are only read at or before ``t``.
"""

from __future__ import annotations

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.registry import register

TAGS = ["alternative"]


@register(name="alt_vix_z_252", depends_on=["mkt_vix_close"], lookback=251, tags=TAGS,
          description="VIX level z-score over 252 bars")
def alt_vix_z_252(ctx):
    vix = ctx["mkt_vix_close"]
    return k.safe_div(vix - k.rolling_mean(vix, 252), k.rolling_std(vix, 252))


@register(name="alt_vix_chg_5", depends_on=["mkt_vix_close"], lookback=5, tags=TAGS,
          description="log(VIX_t / VIX_{t-5})")
def alt_vix_chg_5(ctx):
    vix = ctx["mkt_vix_close"]
    with np.errstate(invalid="ignore"):
        return np.log(k.safe_div(vix, k.shift(vix, 5)))


@register(name="alt_oil_ret_20", depends_on=["mkt_wti_close"], lookback=20, tags=TAGS,
          description="WTI crude 20-bar return")
def alt_oil_ret_20(ctx):
    oil = ctx["mkt_wti_close"]
    prev = k.shift(oil, 20)
    # WTI went negative in 2020: a return off a non-positive price is meaningless -> NaN
    return k.safe_div(oil, np.where(prev > 0, prev, np.nan)) - 1.0


@register(name="alt_cpi_yoy", depends_on=["mkt_core_cpi_value"], lookback=252, tags=TAGS,
          description="core CPI year-over-year change (252 bars), as published (lagged)")
def alt_cpi_yoy(ctx):
    cpi = ctx["mkt_core_cpi_value"]
    return k.safe_div(cpi, k.shift(cpi, 252)) - 1.0


@register(name="alt_ff_mkt_mean_63", depends_on=["mkt_ff_mkt_rf"], lookback=62, tags=TAGS,
          description="Fama-French market excess return, trailing 63-bar mean of published values")
def alt_ff_mkt_mean_63(ctx):
    return k.rolling_mean(ctx["mkt_ff_mkt_rf"], 63)
