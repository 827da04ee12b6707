"""Checks and next-bar alignment shared by the baselines and the fold evaluation.

A window frame (``plusultra_core.windows.build_window_frame``) has one row per (symbol, timestamp)
with ``ret_1d = close_t / close_{t-1} - 1``. A position decided at the close of ``t`` earns the
*next* bar's return of the same symbol, so the realised return of row ``i`` is ``ret_1d`` of row
``i + 1`` when that row belongs to the same symbol, and is unknown (no next bar yet) otherwise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.timestamps import naive_utc, naive_utc_index

STAGE = "evaluation"
RETURN_COLUMN = "ret_1d"


def to_timestamp(value, name: str) -> pd.Timestamp:
    """``value`` as a tz-naive pd.Timestamp (UTC if it carried a zone); ConfigError otherwise."""
    return naive_utc(value, f"{STAGE}: {name}", expected="a timestamp")


def to_ns(values, table: str, column: str = "timestamp") -> pd.Series:
    """``values`` as tz-naive ``datetime64[ns]`` (UTC wall time if zoned); unparsable -> a
    DataValidationError naming the table and column."""
    try:
        out = pd.to_datetime(values)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{table}: column {column!r} does not parse as timestamps ({exc})",
                                  table=table, column=column, check="dtype") from exc
    return pd.Series(naive_utc_index(out).astype("datetime64[ns]"), index=getattr(out, "index", None),
                     name=getattr(out, "name", None))


def check_period(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Validated half-open period ``[start, end)``."""
    start, end = to_timestamp(start, "start"), to_timestamp(end, "end")
    if not end > start:
        raise ConfigError(f"{STAGE}: period end {end} must be after start {start} (the period is [start, end))")
    return start, end


def prepare_frame(frame: pd.DataFrame, feature_names: Sequence[str] = (), *,
                  table: str = "window_frame") -> pd.DataFrame:
    """Validated window frame, sorted by (symbol, timestamp), with a fresh RangeIndex.

    A frame already in that form (the window stage's output) is returned as is, not copied:
    treat the result as read-only. Anything else is copied, converted and sorted.

    Raises DataValidationError naming the column when ``timestamp``, ``symbol``, ``ret_1d`` or a
    requested feature is missing, or when a (symbol, timestamp) key repeats.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{table}: expected a DataFrame, got {type(frame).__name__}",
                                  table=table, check="type")
    needed = ["timestamp", "symbol", RETURN_COLUMN, *feature_names]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{table}: missing columns {missing} (have {list(frame.columns)[:20]})",
            table=table, column=missing[0], check="columns_present")
    if _is_canonical(frame):
        return frame  # already validated order and keys: no copy (callers never mutate it)
    out = frame.copy()
    out["timestamp"] = to_ns(out["timestamp"], table)
    if out["timestamp"].isna().any():
        raise DataValidationError(f"{table}: NaT in column 'timestamp'", table=table,
                                  column="timestamp", check="not_null",
                                  failure_cases=out[out["timestamp"].isna()].head(5))
    if out["symbol"].isna().any():
        raise DataValidationError(f"{table}: null in column 'symbol'", table=table,
                                  column="symbol", check="not_null",
                                  failure_cases=out[out["symbol"].isna()].head(5))
    out["symbol"] = out["symbol"].astype(str)
    out = out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    dup = out.duplicated(["symbol", "timestamp"], keep=False)
    if dup.any():
        raise DataValidationError(
            f"{table}: {int(dup.sum())} rows share a (symbol, timestamp) key, first "
            f"{tuple(out.loc[dup.idxmax(), ['symbol', 'timestamp']])}",
            table=table, column="timestamp", check="unique_keys",
            failure_cases=out.loc[dup, ["symbol", "timestamp"]].head(5))
    return out


def _is_canonical(frame: pd.DataFrame) -> bool:
    """True when ``frame`` is already sorted by (symbol, timestamp) with unique keys, ns
    timestamps without NaT, string symbols and a RangeIndex -- checked in O(N), no sort."""
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
        return False
    if (frame["timestamp"].dtype != np.dtype("datetime64[ns]")
            or not pd.api.types.is_string_dtype(frame["symbol"].dtype)):
        return False
    ts = frame["timestamp"].to_numpy()
    sym = frame["symbol"].to_numpy()
    if len(frame) == 0:
        return True
    if np.isnat(ts).any() or not all(isinstance(v, str) for v in (sym[0], sym[-1])):
        return False
    same = sym[1:] == sym[:-1]
    # within a symbol time strictly increases (unique keys); across a boundary symbols increase
    return bool(np.all(np.where(same, ts[1:] > ts[:-1], sym[1:] > sym[:-1])))


def next_bar(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a prepared frame: (realised return, realised_at) of the same symbol's next bar.

    ``realised_at`` is NaT and the return NaN on each symbol's last row (outcome not known yet);
    a NaN ``ret_1d`` on the next bar gives a NaN realised return with a real ``realised_at``.
    """
    sym = frame["symbol"].to_numpy()
    ts = frame["timestamp"].to_numpy()
    ret = frame[RETURN_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
    n = len(frame)
    # [N] row i has a next bar iff row i+1 is the same symbol (frame is symbol-major, time-sorted)
    has_next = np.zeros(n, dtype=bool)
    if n > 1:
        has_next[:-1] = sym[1:] == sym[:-1]
    realised = np.full(n, np.nan)
    realised_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    realised[:-1][has_next[:-1]] = ret[1:][has_next[:-1]]
    realised_at[:-1][has_next[:-1]] = ts[1:][has_next[:-1]]
    return realised, realised_at


def in_period(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """[N] bool: row decided inside ``[start, end)``."""
    ts = frame["timestamp"].to_numpy()
    return (ts >= start.to_datetime64()) & (ts < end.to_datetime64())


def validity(frame: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """[N] bool: the frame's ``valid`` flag (if any) and every named feature finite."""
    ok = (frame["valid"].to_numpy(dtype=bool, copy=True) if "valid" in frame.columns
          else np.ones(len(frame), dtype=bool))
    for name in feature_names:
        ok &= np.isfinite(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))
    return ok
