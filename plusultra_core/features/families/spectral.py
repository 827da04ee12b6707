"""Spectral: how periodic the recent past is, from an FFT over each trailing window.

For each bar ``t`` the last ``W`` log returns (rows ``t-W+1 .. t`` only: causal) are
transformed with a real FFT; power at frequency ``k >= 1`` (the mean, ``k = 0``, is left out)
gives the dominant frequency's share of total power and its period.
"""

from __future__ import annotations

import numpy as np

from plusultra_core.features import kernels as k
from plusultra_core.features.registry import register

WINDOW = 64


def _spectrum_peak(ctx) -> tuple[np.ndarray, np.ndarray]:
    def compute():
        x = ctx["logret_1d"]
        share = np.full(ctx.shape, np.nan)
        period = np.full(ctx.shape, np.nan)
        for rows, windows in k.sliding_windows(x, WINDOW):        # chunks of [c, S, W]
            power = np.abs(np.fft.rfft(windows, axis=-1)[..., 1:]) ** 2   # [c, S, W/2]
            total = power.sum(axis=-1)
            peak = power.argmax(axis=-1)                          # frequency index k-1
            with np.errstate(divide="ignore", invalid="ignore"):
                share[rows] = np.where(total > 0, power.max(axis=-1) / total, np.nan)
            # period W/k in bars, as a fraction of the window: 1/k, in (0, 1]
            period[rows] = np.where(np.isfinite(total) & (total > 0), 1.0 / (peak + 1.0), np.nan)
        return share, period
    return ctx.memo("spectrum_peak", compute)


@register(name="spec_dom_share_64", depends_on=["logret_1d"], lookback=WINDOW,
          tags=["spectral"], description="power share of the dominant frequency, FFT of 64 log returns")
def spec_dom_share_64(ctx):
    return _spectrum_peak(ctx)[0]


@register(name="spec_dom_period_64", depends_on=["logret_1d"], lookback=WINDOW,
          tags=["spectral"], description="dominant period / 64 (= 1/k) of the 64-bar log-return spectrum")
def spec_dom_period_64(ctx):
    return _spectrum_peak(ctx)[1]
