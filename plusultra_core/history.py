"""History stages over (shard x period) partitions, free of any orchestrator.

The Dagster assets are thin wrappers around these functions: extract and validate a panel for a
range of partitions in one read, compute features over the range plus its lookback, and split
results back into partitions for the store; a large range goes through them in chunks of whole
shards (`plusultra_core.chunks`). Splitting is one ``groupby`` over partition labels (a loop per
partition, never per row or per symbol).

Cross-sectional features (ranks across symbols) are computed over every tradable symbol's bars
in the same period window (`feature_frame` reads that universe in one query, only the columns
the ranks need), so a partition's values do not depend on the sharding or on which partitions
are materialised together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plusultra_core.data.periods import period_bounds, period_keys
from plusultra_core.errors import PartitionKeyError
from plusultra_core.features.pipeline import UniverseFeatures

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


def read_partitions(store, asset: str, refs, columns: list[str] | None = None) -> pd.DataFrame:
    """Partitions ``refs`` of ``asset`` in one DuckDB query, ``(timestamp, symbol)``-indexed."""
    return from_store_frame(store.read(asset, [r.as_store_key() for r in refs], columns=columns))


def _symbols_in(frame: pd.DataFrame, symbols: set[str]) -> pd.DataFrame:
    keep = frame.index.get_level_values("symbol").isin(list(symbols))
    return frame if keep.all() else frame[keep]


@dataclass
class FeatureInputs:
    """What `feature_frame` read: own partitions, universe partitions and symbols."""

    partitions: int
    universe_partitions: int
    universe_symbols: int


def stored_upstream(store, bars_asset: str, upstream, with_data: set[PartitionRef] | None = None) -> list[PartitionRef]:
    """The partitions of ``upstream`` in the store (in order, once each).

    ``with_data``: partitions known to hold source rows. One of them among ``upstream`` that is
    not in the store raises `PartitionKeyError` (its bars would silently be missing from a
    lookback window or from the universe); partitions without source rows are simply absent.
    """
    upstream = list(dict.fromkeys(upstream))
    stored = [r for r in upstream if store.exists(bars_asset, r.as_store_key())]
    if with_data is not None:
        missing = sorted(set(upstream) & set(with_data) - set(stored), key=lambda r: (r.period, r.shard))
        if missing:
            raise PartitionKeyError(
                f"{len(missing)} {bars_asset} partition(s) the features read hold source rows but are not "
                f"in the store {getattr(store, 'root', '')}: "
                f"{', '.join(f'{r.period}|{r.shard}' for r in missing[:10])}; materialise them first")
    return stored


def read_universe(pipeline, store, bars_asset: str, stored: list[PartitionRef], tradable: set[str]) -> pd.DataFrame:
    """Every ``tradable`` symbol's bars in ``stored``, only the `FeaturePipeline.universe_columns`
    (those the store has): what the cross-sectional features rank across."""
    if not stored:
        return read_partitions(store, bars_asset, [])
    have = set((store.read_metadata(bars_asset, stored[0].as_store_key()) or {}).get("columns", []))
    columns = [c for c in pipeline.universe_columns if c in have]
    return _symbols_in(read_partitions(store, bars_asset, stored, ["timestamp", "symbol", *columns]), tradable)


def feature_frame(pipeline, store, bars_asset: str, refs, upstream, tradable: set[str],
                  with_data: set[PartitionRef] | None = None, universe=None) -> tuple[pd.DataFrame, FeatureInputs]:
    """Features of the shards of ``refs`` over the bars partitions ``upstream`` they read.

    ``upstream`` is what the feature stage's partition mapping gives: the run's shards over its
    periods and their lookback or, with cross-sectional features, every shard over them. Features
    are computed from the run's own shards' bars; cross-sectional features (and what they rank)
    from every ``tradable`` symbol's bars in ``upstream`` (`read_universe`: one more query, only
    the `FeaturePipeline.universe_columns`, skipped when the run holds every shard), or from
    ``universe`` when given (`FeaturePipeline.universe_features` of it, computed once for many
    chunks). Rows of symbols that are no longer tradable are left out of both. ``with_data``: see
    `stored_upstream`.

    Returns the features (own shards' rows over the whole read window) and what was read.
    """
    stored = stored_upstream(store, bars_asset, upstream, with_data)
    own_shards = {r.shard for r in refs}
    own = [r for r in stored if r.shard in own_shards]
    bars = _symbols_in(read_partitions(store, bars_asset, own), tradable)
    ranked_over, universe_parts, n_symbols = None, 0, 0
    if pipeline.cross_sectional and len(bars):
        universe_parts = len(stored)
        ranked_over = universe
        if ranked_over is None and len(own) < len(stored):  # otherwise the run's own bars are the universe
            ranked_over = read_universe(pipeline, store, bars_asset, stored, tradable)
        n_symbols = (len(ranked_over.symbols) if isinstance(ranked_over, UniverseFeatures)
                     else _n_symbols(bars if ranked_over is None else ranked_over))
    features = pipeline.transform_panel(bars, universe=ranked_over)
    return features, FeatureInputs(len(own), universe_parts, n_symbols)


def _n_symbols(frame: pd.DataFrame) -> int:
    """Distinct symbols of a (timestamp, symbol)-indexed frame (a count over the index codes)."""
    codes = np.asarray(frame.index.codes[1])
    return int(np.count_nonzero(np.bincount(codes[codes >= 0]))) if len(codes) else 0


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
