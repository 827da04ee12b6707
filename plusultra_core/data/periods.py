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


def _period_months(timestamps, period: str) -> np.ndarray:
    """Months since 1970-01 of each timestamp's period start, as int64 (vectorised, no strings)."""
    months = _check(period)
    ts = np.asarray(timestamps)
    if not np.issubdtype(ts.dtype, np.datetime64):  # strings, Timestamps: parse once
        ts = pd.to_datetime(ts).values
    ts = ts.astype("datetime64[M]")
    m = ts.astype(np.int64)
    return m - (m % months)  # month 0 is January 1970, so every period starts on a multiple


def period_start(timestamps, period: str) -> pd.DatetimeIndex:
    """First day of the period containing each timestamp (vectorised)."""
    return pd.DatetimeIndex(_period_months(timestamps, period).astype("datetime64[M]").astype("datetime64[ns]"))


def period_keys(timestamps, period: str) -> np.ndarray:
    """Partition key of the period containing each timestamp, as an object array of str.

    Only the distinct periods are formatted (a handful), then broadcast back: millions of rows
    cost one integer pass, not millions of string conversions.
    """
    months = _period_months(timestamps, period)
    if months.size == 0:
        return np.empty(0, dtype=object)
    lo = months.min()
    offset = months - lo                               # small non-negative ints: a lookup table, no sort
    present = np.flatnonzero(np.bincount(offset))
    unit = "Y" if PERIODS[period][2] == 12 else "M"
    table = np.empty(offset.max() + 1, dtype=object)
    table[present] = np.datetime_as_string((present + lo).astype("datetime64[M]"), unit=unit)
    return table[offset]


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
