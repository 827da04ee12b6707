"""Calendar: day of week and month of year on the unit circle, turn-of-month flag.

Only the bar's own date is used (a calendar rule, known in advance), never the next bar's
date, so e.g. "last trading day of the month" is approximated by calendar days.
"""

from __future__ import annotations

import numpy as np

from plusultra_core.features.registry import register

TAGS = ["calendar"]


def _parts(ctx) -> dict[str, np.ndarray]:
    """Day of week (Mon=0), month (0-11), day of month (1-31), days in month, as ``[L, S]``.

    Computed once per unique date ``[D]`` and then spread to the bars of that date.
    """
    def compute():
        dates = np.asarray(ctx.dates, dtype="datetime64[ns]")
        days = dates.astype("datetime64[D]")
        months = dates.astype("datetime64[M]")
        month_start = months.astype("datetime64[D]")
        parts = {
            "dow": (days.astype(np.int64) + 3) % 7,        # 1970-01-01 was a Thursday
            "month": months.astype(np.int64) % 12,
            "dom": (days - month_start).astype(np.int64) + 1,
            "dim": ((months + 1).astype("datetime64[D]") - month_start).astype(np.int64),
        }
        return {name: ctx.per_date(v) for name, v in parts.items()}
    return ctx.memo("calendar_parts", compute)


@register(name="cal_dow_sin", depends_on=[], lookback=0, tags=TAGS,
          description="sin(2π·day_of_week/7)")
def cal_dow_sin(ctx):
    return np.sin(2 * np.pi * _parts(ctx)["dow"] / 7.0)


@register(name="cal_dow_cos", depends_on=[], lookback=0, tags=TAGS,
          description="cos(2π·day_of_week/7)")
def cal_dow_cos(ctx):
    return np.cos(2 * np.pi * _parts(ctx)["dow"] / 7.0)


@register(name="cal_month_sin", depends_on=[], lookback=0, tags=TAGS,
          description="sin(2π·(month-1)/12)")
def cal_month_sin(ctx):
    return np.sin(2 * np.pi * _parts(ctx)["month"] / 12.0)


@register(name="cal_month_cos", depends_on=[], lookback=0, tags=TAGS,
          description="cos(2π·(month-1)/12)")
def cal_month_cos(ctx):
    return np.cos(2 * np.pi * _parts(ctx)["month"] / 12.0)


@register(name="cal_turn_of_month", depends_on=[], lookback=0, tags=TAGS,
          description="1 in the last 3 or first 3 calendar days of a month, else 0")
def cal_turn_of_month(ctx):
    p = _parts(ctx)
    flag = ((p["dom"] <= 3) | (p["dom"] >= p["dim"] - 2)).astype(np.float64)
    return np.where(np.isnan(p["dom"]), np.nan, flag)
