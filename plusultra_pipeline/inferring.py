"""Inference days, as plain functions: what the `inference_frames` asset runs.

Day ``D`` is served by cutoff ``C`` with ``C <= D < next C`` (`serving_cutoffs`, the rule
`partitions.serving_cutoff_mapping` declares to Dagster). `infer_days` runs each serving cutoff's
model (`cutoff_models.load_cutoff_model`: its seeds' ensemble, or its single seed) once over the
days it serves, stores one frame per day and yields, per day, a materialisation whose input
points at the checkpoint event that produced it (so Dagster marks exactly the days of a retrained
cutoff stale) and the day's two checks (`frame_checks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity, AssetKey, AssetRecordsFilter, Failure, MetadataValue
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from plusultra_pipeline.code_versions import INFERENCE_CODE_VERSION
from plusultra_pipeline.constants import INFERENCE_FRAMES, SUPERVISED_CHECKPOINT, WINDOW_TENSORS
from plusultra_pipeline.cutoff_models import load_cutoff_model
from plusultra_pipeline.events import frame_version, partition_check, partition_materialization
from plusultra_pipeline.layout import checkpoint_paths, is_complete
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings

ROWS_CHECK = "one_row_per_tradable_symbol"
POSITIONS_CHECK = "positions_in_range"


def serving_cutoffs(cutoff_keys: list[str], days: list[pd.Timestamp]) -> dict[str, list[pd.Timestamp]]:
    """``cutoff -> days`` it serves: the newest cutoff partition on or before each day."""
    starts = pd.DatetimeIndex(sorted(pd.Timestamp(c) for c in cutoff_keys))
    groups: dict[str, list[pd.Timestamp]] = {}
    for day, i in zip(days, starts.searchsorted(pd.DatetimeIndex(days), side="right") - 1):
        if i < 0:
            raise Failure(description=f"inference day {day.date()} is before the first cutoff "
                                      f"({starts[0].date() if len(starts) else 'none'})")
        groups.setdefault(str(starts[i].date()), []).append(day)
    return groups


def checkpoint_event(instance, cutoff: str) -> tuple[int, str]:
    """Storage id and data version of the latest `supervised_checkpoint` event of ``cutoff``."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(SUPERVISED_CHECKPOINT), asset_partitions=[cutoff]), limit=1).records
    if not records:
        raise Failure(description=f"supervised_checkpoint[{cutoff}] was never materialised; "
                                  "materialise it before its inference days")
    record = records[0]
    return record.storage_id, record.asset_materialization.tags.get(DATA_VERSION_TAG, "unknown")


def frame_checks(day: str, part: pd.DataFrame, expected: set[str]) -> list:
    """One row per tradable symbol with a valid bar that day; positions finite in [-1, 1]."""
    symbols = part["symbol"].astype(str) if len(part) else pd.Series(dtype=str)
    duplicates = sorted(symbols[symbols.duplicated()].unique())
    missing, unknown = sorted(expected - set(symbols)), sorted(set(symbols) - expected)
    position = part["position"].to_numpy(np.float64) if len(part) else np.zeros(0)
    out_of_range = int((~np.isfinite(position) | (np.abs(position) > 1.0 + 1e-6)).sum())
    rows_ok = not duplicates and not missing and not unknown
    return [
        partition_check(INFERENCE_FRAMES, ROWS_CHECK, day, rows_ok, {
            "rows": len(part), "expected_symbols": len(expected),
            "duplicates": MetadataValue.text(", ".join(duplicates) or "none"),
            "missing": MetadataValue.text(", ".join(missing[:20]) or "none"),
            "unexpected": MetadataValue.text(", ".join(unknown[:20]) or "none")},
            # a symbol still in its warm-up has a bar but no full window yet: a warning
            severity=AssetCheckSeverity.ERROR if duplicates or unknown else AssetCheckSeverity.WARN),
        partition_check(INFERENCE_FRAMES, POSITIONS_CHECK, day, out_of_range == 0,
                        {"out_of_range": out_of_range, "max_abs_position": round(float(np.abs(position).max()), 6)
                         if len(position) else 0.0}),
    ]


def infer_days(settings: PipelineSettings, instance, store: PartitionStore, database: str | Path,
               cutoff_keys: Sequence[str], day_keys: Sequence[str], log) -> Iterator:
    """Infer trading days ``day_keys``, each with the cutoff of ``cutoff_keys`` that serves it.

    Per serving cutoff: fail unless its supervised checkpoints are complete and materialised,
    predict its days in one pass over ``database``, store each day's frame (with the checkpoint,
    market data and risk lineage in its sidecar), export the predictions to the database when
    ``inference.export_predictions`` is on, and log a line to ``log``. Yields, per day, its
    `partition_materialization` and its `frame_checks`.
    """
    from plusultra_core.inference.export import export_predictions

    days = [pd.Timestamp(k) for k in day_keys]
    store_ = store.store()
    seeds = settings.training.seeds
    for cutoff, group in serving_cutoffs(cutoff_keys, days).items():
        paths = checkpoint_paths(store.root, "supervised", cutoff, seeds)
        if not all(is_complete(p) for p in paths):
            raise Failure(description=f"days {group[0].date()}..{group[-1].date()} are served by cutoff {cutoff}, "
                                      f"whose supervised checkpoints are incomplete: materialise "
                                      f"supervised_checkpoint[{cutoff}] first")
        pointer, checkpoint_version = checkpoint_event(instance, cutoff)
        served = load_cutoff_model(store.root, cutoff, seeds)
        agent, label = served.agent, served.label
        result = agent.predict(database, start=min(group), end=max(group))
        frame = result.frame
        by_day = dict(tuple(frame.groupby(pd.to_datetime(frame["timestamp"]).dt.normalize()))) if len(frame) else {}
        expected = _valid_symbols(store_, min(group), max(group))
        for day in group:
            key = str(day.date())
            part = by_day.get(day, frame.iloc[:0]).reset_index(drop=True)
            version = frame_version(part)
            stored = store_.write(INFERENCE_FRAMES, {"day": key}, part, metadata={
                "checkpoint": str(label), "checkpoints": [str(p) for p in paths], "cutoff": cutoff,
                "checkpoint_version": checkpoint_version, "market_data_version": result.data_version,
                "data_version": version,
                "risk": result.risk.get(key, {}) if isinstance(result.risk, dict) else {}})
            yield partition_materialization(INFERENCE_FRAMES, key, version, INFERENCE_CODE_VERSION,
                                            {SUPERVISED_CHECKPOINT: checkpoint_version}, pointer, {
                "symbols": len(part), "cutoff": cutoff,
                "checkpoint": MetadataValue.path(str(label)),
                "gross_exposure": round(float(part["position"].abs().sum()), 6) if len(part) else 0.0,
                "market_data_version": result.data_version,
                "path": MetadataValue.path(str(stored.path))})
            yield from frame_checks(key, part, expected.get(day, set()))
        if settings.inference.export_predictions and len(frame):
            export_predictions(database, frame, checkpoint_id=f"supervised@{cutoff}/{agent.checkpoint_id}")
        log.info(f"inference: {len(group)} day(s) {group[0].date()}..{group[-1].date()} "
                 f"served by cutoff {cutoff} ({len(frame)} rows)")

def _valid_symbols(store, first: pd.Timestamp, last: pd.Timestamp) -> dict[pd.Timestamp, set[str]]:
    """``day -> symbols`` with a valid window-tensor row that day (one store query)."""
    rows = store.read(WINDOW_TENSORS, columns=["timestamp", "symbol"],
                      where="valid AND timestamp >= $lo AND timestamp < $hi",
                      params={"lo": first, "hi": last + pd.Timedelta(days=1)})
    if rows.empty:
        return {}
    days = pd.to_datetime(rows["timestamp"]).dt.normalize()
    return {d: set(g.astype(str)) for d, g in rows["symbol"].groupby(days)}
