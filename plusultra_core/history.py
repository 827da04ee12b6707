"""History stages over (shard x period) partitions, free of any orchestrator.

The Dagster assets are thin wrappers around these functions: extract and validate one panel for
a whole range of partitions in a single read, compute features once over the range plus its
lookback, and split results back into partitions for the store. Splitting is one ``groupby``
over partition labels (a loop per partition, never per row or per symbol).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plusultra_core.data.periods import period_bounds, period_keys

STORE_DIMS = ("shard", "period")  # partition columns in the store (hive layout)


@dataclass(frozen=True)
class PartitionRef:
    shard: str
    period: str

    def as_store_key(self) -> dict[str, str]:
        return {"shard": self.shard, "period": self.period}


def range_bounds(periods: list[str], period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Inclusive ``(start, end)`` dates covering every period key in ``periods``."""
    bounds = [period_bounds(p, period) for p in periods]
    start = min(b[0] for b in bounds)
    end = max(b[1] for b in bounds) - pd.Timedelta(days=1)
    return start, end


def split_partitions(frame: pd.DataFrame, shard_of: dict[str, str], period: str,
                     keep: set[PartitionRef] | None = None) -> dict[PartitionRef, pd.DataFrame]:
    """Split a ``(timestamp, symbol)``-indexed frame into per-partition frames.

    Only partitions in ``keep`` are returned (when given); each keeps the frame's columns and
    index, sorted by (timestamp, symbol).
    """
    if frame.empty:
        return {}
    ts = frame.index.get_level_values("timestamp")
    sym = frame.index.get_level_values("symbol")
    shards = pd.Index(sym).map(shard_of).to_numpy()
    periods = period_keys(ts, period)
    out = {}
    for (shard, per), idx in pd.Series(np.arange(len(frame))).groupby([shards, periods]).indices.items():
        ref = PartitionRef(str(shard), str(per))
        if keep is None or ref in keep:
            out[ref] = frame.iloc[idx]
    return out


def to_store_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Index ``(timestamp, symbol)`` -> plain columns for Parquet."""
    return frame.reset_index()


def from_store_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of `to_store_frame`; drops hive partition columns; sorted (timestamp, symbol)."""
    frame = frame.drop(columns=[c for c in STORE_DIMS if c in frame.columns])
    if "timestamp" not in frame.columns:  # nothing stored yet
        index = pd.MultiIndex.from_arrays([pd.DatetimeIndex([]), pd.Index([], dtype=object)],
                                          names=["timestamp", "symbol"])
        return pd.DataFrame(index=index)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame.set_index(["timestamp", "symbol"]).sort_index()


def shard_fingerprints(symbol_fingerprints: pd.DataFrame, shard_of: dict[str, str],
                       period: str) -> dict[PartitionRef, str]:
    """Combine per-symbol × period checksums into one fingerprint per (shard, period).

    ``symbol_fingerprints`` is `SQLiteMarketDataset.partition_fingerprints` output. A shard's
    fingerprint changes iff any of its symbols' rows in that period changed.
    """
    fp = symbol_fingerprints[symbol_fingerprints["symbol"].isin(shard_of)].copy()
    if fp.empty:
        return {}
    fp["shard"] = fp["symbol"].map(shard_of)
    fp["period"] = period_keys(fp["period_start"], period)
    fp["token"] = (fp["symbol"].astype(str) + ":" + fp["n_rows"].astype(str) + ":"
                   + fp["checksum"].astype(str))
    out = {}
    for (shard, per), tokens in fp.sort_values("symbol").groupby(["shard", "period"])["token"]:
        out[PartitionRef(str(shard), str(per))] = hashlib.sha256("|".join(tokens).encode()).hexdigest()[:16]
    return out
