"""Higher moments of returns: rolling skewness and excess kurtosis."""

from __future__ import annotations

from plusultra_core.features import kernels as k
from plusultra_core.features.registry import register

WINDOW = 60


def _moments(ctx):
    """Central moments m2, m3, m4 of ret_1d over the window, shared by skew and kurtosis."""
    return ctx.memo(f"ret_moments_{WINDOW}", lambda: k.rolling_moments(ctx["ret_1d"], WINDOW))


@register(name="skew_60", depends_on=["ret_1d"], lookback=WINDOW, tags=["moments"],
          description="60-bar sample skewness of ret_1d (bias-corrected, as pandas)")
def skew_60(ctx):
    m2, m3, _ = _moments(ctx)
    return k.skew_from_moments(m2, m3, WINDOW)


@register(name="kurt_60", depends_on=["ret_1d"], lookback=WINDOW, tags=["moments"],
          description="60-bar excess kurtosis of ret_1d (bias-corrected, as pandas)")
def kurt_60(ctx):
    m2, _, m4 = _moments(ctx)
    return k.kurt_from_moments(m2, m4, WINDOW)
