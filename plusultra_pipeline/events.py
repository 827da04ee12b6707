"""Per-partition Dagster events: content data versions and the provenance Dagster reads.

Dagster's own output handling gives every partition of a single-run range ONE materialization
metadata set and ONE data version, and points partitioned inputs at whichever upstream event
was newest. Range assets here therefore log one `AssetMaterialization` (and one check
evaluation) per partition themselves, with:

* ``dagster/data_version``: a hash of the partition's content (a rebuild that produces the same
  rows gets the same version, so nothing downstream turns stale);
* ``dagster/code_version``: the asset's code version;
* ``dagster/input_data_version/<dep>`` and ``dagster/input_event_pointer/<dep>``: what the
  partition was built from. Dagster's stale-status resolver compares, per upstream partition,
  the newest event after the pointer with the one before it -- the same rule it applies to
  events it writes itself, so the UI's "stale" and `plusultra.staleness` agree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from dagster import AssetKey, AssetMaterialization
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

VERSION_CHARS = 16


def digest(parts: Iterable[str]) -> str:
    """Short SHA-256 of ``parts`` joined (a data version or a combined input version)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:VERSION_CHARS]


def combined_version(versions: Mapping[tuple[str, str], str | None]) -> str:
    """One version for a set of (shard, period) partitions from their own versions (order-free):
    the input version of a feature run, a cutoff's training set, a checkpoint's data version."""
    return digest(f"{shard}/{period}={version}" for (shard, period), version in sorted(versions.items()))


def stored_versions(store, asset: str, parts: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], str | None]:
    """``(shard, period) -> data version`` recorded in the store's sidecars at write time."""
    return {(p["shard"], p["period"]): (store.read_metadata(asset, p) or {}).get("metadata", {}).get("data_version")
            for p in parts}


def frame_version(frame: pd.DataFrame) -> str:
    """Content version of a frame: its columns, dtypes and every value (index included), hashed
    vectorised; equal frames give equal versions whatever wrote them."""
    rows = pd.util.hash_pandas_object(frame, index=True).to_numpy() if len(frame) else np.zeros(0, np.uint64)
    header = "|".join(f"{c}:{t}" for c, t in zip(frame.columns, frame.dtypes.astype(str)))
    return hashlib.sha256(header.encode() + rows.tobytes()).hexdigest()[:VERSION_CHARS]


def file_version(paths: Iterable[Path]) -> str:
    """Content version of files (e.g. every seed's checkpoint weights), in the given order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:VERSION_CHARS]


def event_pointer(instance) -> int:
    """Storage id of the newest event: an input pointer meaning "built from everything up to here"."""
    return int(instance.event_log_storage.get_maximum_record_id() or 0)


def provenance_tags(data_version: str, code_version: str, inputs: Mapping[str, str], pointer: int) -> dict[str, str]:
    """Data-version tags of one materialization: its version, code version and each input's
    (combined) version read at ``pointer``."""
    tags = {DATA_VERSION_TAG: data_version, CODE_VERSION_TAG: code_version,
            DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}
    for dep, version in inputs.items():
        key = AssetKey.from_user_string(dep)
        tags[get_input_data_version_tag(key)] = version
        tags[get_input_event_pointer_tag(key)] = str(pointer)
    return tags


def partition_materialization(asset: str, partition, data_version: str, code_version: str,
                              inputs: Mapping[str, str], pointer: int, metadata: dict) -> AssetMaterialization:
    """One partition's materialization event with its own metadata, version and provenance."""
    tags = provenance_tags(data_version, code_version, inputs, pointer)
    if hasattr(partition, "keys_by_dimension"):  # multi-partition keys also tag each dimension
        tags.update({f"dagster/partition/{d}": v for d, v in partition.keys_by_dimension.items()})
    return AssetMaterialization(asset_key=asset, partition=str(partition), metadata=metadata, tags=tags)


def partition_check(asset: str, check: str, partition, passed: bool, metadata: dict,
                    severity=None, description: str | None = None) -> AssetCheckEvaluation:
    """One partition's evaluation of ``check`` (Dagster scopes check results of a range run to
    the whole run; this scopes them to the partition they are about)."""
    from dagster import AssetCheckSeverity

    return AssetCheckEvaluation(check_name=check, asset_key=AssetKey(asset), passed=passed, metadata=metadata,
                                severity=severity or AssetCheckSeverity.ERROR, description=description,
                                partition=str(partition))

