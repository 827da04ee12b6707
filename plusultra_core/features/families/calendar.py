"""Calendar: day of week and month of year on the unit circle, turn-of-month flag.

Only the bar's own date is used (a calendar rule, known in advance), never the next bar's
date, so e.g. "last trading day of the month" is approximated by calendar days.
"""

from __future__ import annotations

from functools import partial

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


def _cyclic(ctx, part: str, period: float, wave):
    """``wave(2π·part/period)``: a cyclic calendar part on the unit circle, so e.g. Sunday sits
    next to Monday rather than six units away."""
    return wave(2 * np.pi * _parts(ctx)[part] / period)


# part of `_parts`, its period, how the description spells it; the order is the output order
for _part, _period, _label in (("dow", 7.0, "day_of_week/7"), ("month", 12.0, "(month-1)/12")):
    for _wave in (np.sin, np.cos):
        register(name=f"cal_{_part}_{_wave.__name__}", depends_on=[], lookback=0, tags=TAGS,
                 description=f"{_wave.__name__}(2π·{_label})")(
            partial(_cyclic, part=_part, period=_period, wave=_wave))


@register(name="cal_turn_of_month", depends_on=[], lookback=0, tags=TAGS,
          description="1 in the last 3 or first 3 calendar days of a month, else 0")
def cal_turn_of_month(ctx):
    p = _parts(ctx)
    flag = ((p["dom"] <= 3) | (p["dom"] >= p["dim"] - 2)).astype(np.float64)
    return np.where(np.isnan(p["dom"]), np.nan, flag)
