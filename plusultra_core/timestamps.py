"""One rule for turning user- or file-supplied times into the pipeline's timestamps.

Everything downstream compares tz-naive timestamps in UTC wall time: a zoned value is converted
to UTC and its zone dropped (``2018-01-02 20:00-05:00`` is ``2018-01-03 01:00``); text that is not
a time, or NaT, is a `ConfigError` naming what it was for. Stored bars never reach this with a
zone: the contract rejects zoned timestamps at ingest (`naive_timestamp`), so only arguments
(CLI dates, split bounds, API requests) and derived frames go through it.
"""

from __future__ import annotations

import pandas as pd

from plusultra_core.errors import ConfigError


def naive_utc(value, what: str, *, expected: str = "a date/time") -> pd.Timestamp:
    """``value`` as a tz-naive `pd.Timestamp` in UTC wall time; `ConfigError` naming ``what``."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}={value!r} is not {expected}") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ConfigError(f"{what}={value!r} is not {expected}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def naive_utc_index(values) -> pd.DatetimeIndex:
    """A `DatetimeIndex` of ``values``, converted to UTC wall time and made tz-naive if zoned."""
    index = pd.DatetimeIndex(values)
    return index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
