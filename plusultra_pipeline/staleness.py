"""What is stale, asked of Dagster: the same answer the UI shows.

One `CachingStaleStatusResolver` per question (it caches the instance's records for the request),
built as Dagster's own request contexts build it. A partition is *to do* when Dagster calls it
MISSING (never materialised) or STALE (new code version, or an input partition whose data
version changed since it was built). Dagster judges only direct inputs: a rebuilt partition with
new content makes its children stale in turn, so the runner asks stage by stage.

Dagster's resolver reads the event log one partition at a time: for every partition asked about
and every one of its input partitions, "the newest event after the input pointer" is one SQL
query. A `feature_panel` partition reads 96 `validated_bars` partitions at reference scale, so
asking about 640 of them cost ~60,000 queries (6 minutes on the SQLite instance). `BatchedStaleStatusResolver`
keeps Dagster's rules (its code runs unchanged) and answers the same reads from two batched
queries per asset: the newest storage id of every partition, and the records of the partitions
asked about. "Newest after pointer C" is then a comparison of storage ids; only a partition that
did change since C costs its own query (its previous version). Mapping a partition to its input
partitions is Dagster's too, done once per group of partitions that provably share their inputs
(those differing only in a dimension every input reads whole: ``AllPartitionMapping``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from dagster import (AllPartitionMapping, AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance,
                     MultiPartitionMapping, MultiPartitionsDefinition)
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime
from dagster._utils.caching_instance_queryer import CachingInstanceQueryer

TODO = (StaleStatus.MISSING, StaleStatus.STALE)
MATERIALIZATION, OBSERVATION = DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION
# storage ids per records query: well below SQLite's bound-parameter limit
RECORDS_PER_QUERY = 500


class LatestRecords:
    """The newest event record of each partition of an asset, per event type, read in batches:
    every partition's newest storage id in one query, records only for the partitions asked for."""

    def __init__(self, instance: DagsterInstance):
        self._instance = instance
        self._ids: dict[tuple, dict[str, int]] = {}
        self._records: dict[tuple, object] = {}
        self._before: dict[tuple, object] = {}

    def storage_id(self, key: AssetKey, event_type, partition: str) -> int | None:
        if (key, event_type) not in self._ids:
            self._ids[key, event_type] = dict(self._instance.get_latest_storage_id_by_partition(key, event_type))
        return self._ids[key, event_type].get(partition)

    def load(self, key: AssetKey, event_type, partitions: Iterable[str]) -> None:
        """Fetch the newest records of ``partitions`` (those not loaded yet) in a few queries."""
        ids = {}
        for p in partitions:
            if (key, event_type, p) not in self._records:
                ids[p] = self.storage_id(key, event_type, p)
                if ids[p] is None:
                    self._records[key, event_type, p] = None
                    del ids[p]
        partition_of = {sid: p for p, sid in ids.items()}
        chunks = [list(partition_of)[i:i + RECORDS_PER_QUERY] for i in range(0, len(partition_of), RECORDS_PER_QUERY)]
        fetch = self._instance.fetch_observations if event_type == OBSERVATION else self._instance.fetch_materializations
        for chunk in chunks:
            for record in fetch(AssetRecordsFilter(key, storage_ids=chunk), limit=len(chunk)).records:
                self._records[key, event_type, partition_of[record.storage_id]] = record

    def latest(self, key: AssetKey, event_type, partition: str):
        if (key, event_type, partition) not in self._records:
            self.load(key, event_type, [partition])
        return self._records[key, event_type, partition]

    def get_latest_data_version_record(self, key: AssetKey, is_source: bool | None = None,
                                       partition_key: str | None = None, before_cursor: int | None = None,
                                       after_cursor: int | None = None):
        """`DagsterInstance.get_latest_data_version_record`, answered from the batched reads: the
        newest record after a cursor is the partition's newest record if its id is above the cursor,
        and the newest before a cursor the newest record if its id is below it (else one query)."""
        if partition_key is None or is_source is None:
            return self._instance.get_latest_data_version_record(key, is_source, partition_key,
                                                                 before_cursor, after_cursor)
        event_type = OBSERVATION if is_source else MATERIALIZATION
        newest = self.storage_id(key, event_type, partition_key)
        if newest is None or (after_cursor is not None and newest <= after_cursor):
            return None
        if before_cursor is None or newest < before_cursor:
            return self.latest(key, event_type, partition_key)
        memo = (key, is_source, partition_key, before_cursor, after_cursor)
        if memo not in self._before:  # the version before a change: rare, one query each
            self._before[memo] = self._instance.get_latest_data_version_record(*memo)
        return self._before[memo]


class BatchedStaleStatusResolver(CachingStaleStatusResolver):
    """Dagster's `CachingStaleStatusResolver` with its per-partition event-log reads batched
    (`LatestRecords`); its rules are Dagster's own code."""

    def __init__(self, instance: DagsterInstance, asset_graph, loading_context):
        super().__init__(instance=instance, asset_graph=asset_graph, loading_context=loading_context,
                         instance_queryer=CachingInstanceQueryer(instance, asset_graph, loading_context))
        self.records = LatestRecords(instance)
        self._instance = self.records  # what `_is_dep_updated` reads per input partition
        self._free: dict[AssetKey, frozenset] = {}
        self._deps_by_group: dict[tuple, list] = {}

    def _get_partition_dependencies(self, *, key):
        # Dagster maps each partition on its own (~4 ms for a feature partition's 96 inputs); the
        # inputs of partitions that differ only in dimensions every input reads whole are the same
        free = self._free_dimensions(key.asset_key)
        if not free or key.partition_key is None:
            return super()._get_partition_dependencies(key=key)
        dims = self.asset_graph.get(key.asset_key).partitions_def.get_partition_key_from_str(
            key.partition_key).keys_by_dimension
        group = (key.asset_key, tuple(sorted((d, v) for d, v in dims.items() if d not in free)))
        if group not in self._deps_by_group:
            self._deps_by_group[group] = super()._get_partition_dependencies(key=key)
        return self._deps_by_group[group]

    def _free_dimensions(self, key: AssetKey) -> frozenset:
        """Dimensions of ``key``'s partitions that every input maps with `AllPartitionMapping`."""
        if key not in self._free:
            asset, free = self.asset_graph.get(key), None
            for parent in asset.parent_keys if isinstance(asset.partitions_def, MultiPartitionsDefinition) else ():
                mapping = self.asset_graph.get_partition_mapping(key, parent)
                if parent == key or not isinstance(mapping, MultiPartitionMapping):
                    free = frozenset()
                    break
                whole = {m.dimension_name for m in mapping.downstream_mappings_by_upstream_dimension.values()
                         if isinstance(m.partition_mapping, AllPartitionMapping)}
                free = frozenset(whole) if free is None else free & whole
            self._free[key] = free or frozenset()
        return self._free[key]

    def _event_types(self, key: AssetKey) -> list:
        asset = self.asset_graph.get(key)
        return [t for t, on in ((MATERIALIZATION, asset.is_materializable), (OBSERVATION, asset.is_observable)) if on]

    def prefetch(self, key: AssetKey, partitions: Sequence[str]) -> None:
        """Load the newest records of ``partitions`` in batches before asking about each."""
        for event_type in self._event_types(key):
            self.records.load(key, event_type, partitions)

    def _get_latest_data_version_record(self, key):
        # Dagster's version: the queryer's newest materialization (or observation, if observable)
        if key.partition_key is None:
            return self.instance_queryer.get_latest_materialization_or_observation_record(asset_partition=key)
        found = [r for t in self._event_types(key.asset_key)
                 if (r := self.records.latest(key.asset_key, t, key.partition_key)) is not None]
        return max(found, key=lambda r: r.storage_id, default=None)


def resolver(instance: DagsterInstance, defs) -> BatchedStaleStatusResolver:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    return BatchedStaleStatusResolver(instance, graph, view)


def to_do(instance: DagsterInstance, defs, asset: str, keys: Iterable[str] | None = None,
          res: BatchedStaleStatusResolver | None = None) -> list[str]:
    """Partition keys of ``asset`` (all, or ``keys``) that Dagster calls missing or stale
    (``res``: a resolver to share between questions about one state of the instance)."""
    res = res or resolver(instance, defs)
    key = AssetKey(asset)
    if keys is None:
        partitions_def = defs.resolve_asset_graph().get(key).partitions_def
        keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance) if partitions_def else [None]
    keys = list(keys)
    res.prefetch(key, [k for k in keys if k is not None])
    return [k for k in keys if res.get_status(key, k) in TODO]


def stale_causes(instance: DagsterInstance, defs, asset: str, key: str | None) -> list[str]:
    """Dagster's reasons, one line each ("validated_bars[2005|MSFT] has a new dependency data version")."""
    res = resolver(instance, defs)
    return [f"{c.key.asset_key.to_user_string()}[{c.key.partition_key}] {c.reason}"
            for c in res.get_stale_root_causes(AssetKey(asset), key)]


def statuses(instance: DagsterInstance, defs, asset: str, keys: Sequence[str]) -> dict[str, str]:
    """``key -> FRESH | STALE | MISSING`` for reporting (the catalog's view)."""
    res = resolver(instance, defs)
    res.prefetch(AssetKey(asset), list(keys))
    return {k: res.get_status(AssetKey(asset), k).value for k in keys}
