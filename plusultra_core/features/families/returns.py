"""Returns and momentum: simple/log returns, overnight/intraday split, n-day momentum."""

from __future__ import annotations

from functools import partial

import numpy as np

from plusultra_core.features.kernels import safe_div, shift
from plusultra_core.features.registry import register

MOMENTUM_WINDOWS = (5, 20, 60, 120, 252)


@register(name="ret_1d", depends_on=["close"], lookback=1, tags=["returns"],
          description="close_t / close_{t-1} - 1 (the return stream targets are built from)")
def ret_1d(ctx):
    close = ctx["close"]
    return safe_div(close, shift(close, 1)) - 1.0


@register(name="logret_1d", depends_on=["close"], lookback=1, tags=["returns"],
          description="log(close_t / close_{t-1})")
def logret_1d(ctx):
    close = ctx["close"]
    return np.log(safe_div(close, shift(close, 1)))


@register(name="ret_overnight", depends_on=["open", "close"], lookback=1, tags=["returns"],
          description="open_t / close_{t-1} - 1 (gap)")
def ret_overnight(ctx):
    return safe_div(ctx["open"], shift(ctx["close"], 1)) - 1.0


@register(name="ret_intraday", depends_on=["open", "close"], lookback=0, tags=["returns"],
          description="close_t / open_t - 1")
def ret_intraday(ctx):
    return safe_div(ctx["close"], ctx["open"]) - 1.0


def _momentum(ctx, n: int):
    close = ctx["close"]
    return safe_div(close, shift(close, n)) - 1.0


for _n in MOMENTUM_WINDOWS:
    register(name=f"mom_{_n}", depends_on=["close"], lookback=_n, tags=["returns", "momentum"],
             description=f"{_n}-bar momentum: close_t / close_{{t-{_n}}} - 1")(partial(_momentum, n=_n))
