"""What is stale, asked of Dagster: the same answer the UI shows.

One `CachingStaleStatusResolver` per question (it caches the instance's records for the request),
built as Dagster's own request contexts build it. A partition is *to do* when Dagster calls it
MISSING (never materialised) or STALE (new code version, or an input partition whose data
version changed since it was built). Dagster judges only direct inputs: a rebuilt partition with
new content makes its children stale in turn, so the runner asks stage by stage.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from dagster import AssetKey, DagsterInstance
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

TODO = (StaleStatus.MISSING, StaleStatus.STALE)


def resolver(instance: DagsterInstance, defs) -> CachingStaleStatusResolver:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def to_do(instance: DagsterInstance, defs, asset: str, keys: Iterable[str] | None = None) -> list[str]:
    """Partition keys of ``asset`` (all, or ``keys``) that Dagster calls missing or stale."""
    res = resolver(instance, defs)
    key = AssetKey(asset)
    if keys is None:
        partitions_def = defs.resolve_asset_graph().get(key).partitions_def
        keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance) if partitions_def else [None]
    return [k for k in keys if res.get_status(key, k) in TODO]


def stale_causes(instance: DagsterInstance, defs, asset: str, key: str | None) -> list[str]:
    """Dagster's reasons, one line each ("validated_bars[2005|MSFT] has a new dependency data version")."""
    res = resolver(instance, defs)
    return [f"{c.key.asset_key.to_user_string()}[{c.key.partition_key}] {c.reason}"
            for c in res.get_stale_root_causes(AssetKey(asset), key)]


def statuses(instance: DagsterInstance, defs, asset: str, keys: Sequence[str]) -> dict[str, str]:
    """``key -> FRESH | STALE | MISSING`` for reporting (the catalog's view)."""
    res = resolver(instance, defs)
    return {k: res.get_status(AssetKey(asset), k).value for k in keys}
