"""History periods (year / quarter / month): partition keys and their date bounds.

Keys match Dagster's time-window partition keys for the same cadence, so core code and the
pipeline agree without core importing Dagster: ``year`` -> ``"2003"``, ``quarter`` ->
``"2003-04"`` (first month of the quarter), ``month`` -> ``"2003-07"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plusultra_core.errors import PartitionKeyError

# period name -> (cron schedule of period starts, key format, months per period)
PERIODS: dict[str, tuple[str, str, int]] = {
    "year": ("0 0 1 1 *", "%Y", 12),
    "quarter": ("0 0 1 */3 *", "%Y-%m", 3),
    "month": ("0 0 1 * *", "%Y-%m", 1),
}


def _check(period: str) -> int:
    if period not in PERIODS:
        raise PartitionKeyError(f"unknown history period '{period}'; expected one of {', '.join(PERIODS)}")
    return PERIODS[period][2]


def period_start(timestamps, period: str) -> pd.DatetimeIndex:
    """First day of the period containing each timestamp (vectorised)."""
    months = _check(period)
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps))
    month0 = (ts.month.to_numpy() - 1) // months * months + 1
    return pd.to_datetime({"year": ts.year, "month": month0, "day": 1})  # type: ignore[arg-type]


def period_keys(timestamps, period: str) -> np.ndarray:
    """Partition key of the period containing each timestamp, as an object array of str."""
    starts = pd.DatetimeIndex(period_start(timestamps, period))
    return np.asarray(starts.strftime(PERIODS[period][1]), dtype=object)


def period_bounds(key: str, period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(first day, first day of the next period)`` of a period key; the end is exclusive."""
    months = _check(period)
    fmt = PERIODS[period][1]
    try:
        start = pd.Timestamp(pd.to_datetime(key, format=fmt))
    except (ValueError, TypeError) as exc:
        raise PartitionKeyError(f"period key '{key}' does not match the {period} format {fmt}") from exc
    if (start.month - 1) % months:
        raise PartitionKeyError(f"period key '{key}' is not the start of a {period}")
    return start, start + pd.DateOffset(months=months)
