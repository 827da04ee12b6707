"""`training_set`: per cutoff, which window-tensor partitions its models may read, and their
combined content version.

A checkpoint reads every history partition whose period starts before its cutoff. Dagster does
not judge staleness through a fan-in that wide (it skips dependencies over 100 partitions), so
this small manifest asset is the fan-in Dagster *can* judge: its data version changes only
when a partition before the cutoff changed content, and the checkpoints depend on it one to
one. Materialising every cutoff's manifest reads no rows (only the store's sidecars), so the
runner refreshes them all before asking what to train.
"""

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    MetadataValue,
)

from plusultra_core.data.periods import period_bounds
from plusultra_pipeline.assets.range_asset import range_asset
from plusultra_pipeline.constants import TRAINING_GROUP, TRAINING_SET, WINDOW_TENSORS
from plusultra_pipeline.events import combined_version, event_pointer, partition_materialization
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings

TRAINING_SET_CODE_VERSION = "1"


def manifests(store, cutoffs: list[str], period: str) -> dict[str, dict]:
    """``cutoff -> {version, partitions, rows, periods}`` from one pass over the sidecars."""
    parts = store.list_partitions(WINDOW_TENSORS)
    starts = {p["period"]: period_bounds(p["period"], period)[0] for p in parts}
    meta = {(p["shard"], p["period"]): (store.read_metadata(WINDOW_TENSORS, p) or {}).get("metadata", {}) for p in parts}
    out = {}
    for cutoff in cutoffs:
        before = sorted(k for k in meta if starts[k[1]] < pd.Timestamp(cutoff))
        out[cutoff] = {"version": combined_version({k: meta[k].get("data_version") for k in before}),
                       "partitions": len(before), "rows": int(sum(meta[k].get("rows", 0) for k in before)),
                       "periods": f"{min(p for _, p in before)} .. {max(p for _, p in before)}" if before else "none"}
    return out


def build_training_set_asset(settings: PipelineSettings, cutoffs_def):
    @range_asset(
        AssetSpec(TRAINING_SET, partitions_def=cutoffs_def, group_name=TRAINING_GROUP,
                  deps=[AssetDep(WINDOW_TENSORS, partition_mapping=AllPartitionMapping())],
                  code_version=TRAINING_SET_CODE_VERSION, kinds={"parquet"},
                  description="Per cutoff: the window-tensor partitions before it (what its models read) "
                              "and their combined content version."),
    )
    def training_set(context: AssetExecutionContext, store: PartitionStore):
        keys = list(context.partition_keys)
        pointer = event_pointer(context.instance)
        for key, info in manifests(store.store(), keys, settings.history.period).items():
            yield partition_materialization(TRAINING_SET, key, info["version"], TRAINING_SET_CODE_VERSION,
                                            {WINDOW_TENSORS: info["version"]}, pointer, {
                "partitions": info["partitions"], "rows": info["rows"],
                "periods": MetadataValue.text(info["periods"])})

    return training_set
