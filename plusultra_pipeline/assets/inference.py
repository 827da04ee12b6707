"""Inference group: per trading day, the newest cutoff <= day proposes positions.

A cutoff with several seeds serves their ensemble (mean decision, `SeedEnsemble`): the same
strategy the evaluation scores as ``<architecture>/ensemble``.
"""

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from plusultra_pipeline.layout import checkpoint_paths, cutoff_dir, stored_cutoffs
from plusultra_pipeline.constants import INFERENCE_FRAMES, INFERENCE_GROUP, SUPERVISED_CHECKPOINT
from plusultra_pipeline.metadata import table
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def checkpoint_for_days(settings: PipelineSettings, days: list[pd.Timestamp]) -> dict[pd.Timestamp, list[pd.Timestamp]]:
    """``cutoff -> days`` that the cutoff's supervised checkpoints serve (newest cutoff <= day)."""
    cutoffs = sorted(stored_cutoffs(settings.store_path, "supervised", settings.training.seeds))
    groups: dict[pd.Timestamp, list[pd.Timestamp]] = {}
    missing = []
    for day in days:
        usable = [c for c in cutoffs if c <= day]
        if usable:
            groups.setdefault(usable[-1], []).append(day)
        else:
            missing.append(day)
    if missing:
        raise Failure(description=f"no supervised checkpoint with a cutoff on or before {missing[0].date()} "
                                  f"(available cutoffs: {[str(c.date()) for c in cutoffs] or 'none'})")
    return groups


def build_inference_assets(settings: PipelineSettings, days_def):
    @asset(
        name=INFERENCE_FRAMES,
        partitions_def=days_def,
        backfill_policy=BackfillPolicy.single_run(),
        ins={SUPERVISED_CHECKPOINT: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing)},
        group_name=INFERENCE_GROUP,
        code_version="1",
        kinds={"pytorch", "parquet"},
    )
    def inference_frames(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Per symbol and trading day: action probabilities, position, expected return and risk analytics."""
        from plusultra_core.inference.agent import MarketNNPlusUltraAgent
        from plusultra_core.inference.export import export_predictions
        from plusultra_core.training.checkpoints import read_sidecar

        days = [pd.Timestamp(k) for k in context.partition_keys]
        store_ = store.store()
        rows, summary = 0, []
        for cutoff, group in checkpoint_for_days(settings, days).items():
            paths = checkpoint_paths(settings.store_path, "supervised", str(cutoff.date()), settings.training.seeds)
            ckpt = cutoff_dir(settings.store_path, "supervised", str(cutoff.date())) if len(paths) > 1 else paths[0]
            agent = MarketNNPlusUltraAgent.from_checkpoints(paths, label=ckpt)
            created_at = [read_sidecar(p).get("created_at") for p in paths]
            result = agent.predict(market_db.path, start=min(group), end=max(group))
            frame = result.frame
            by_day = dict(tuple(frame.groupby(pd.to_datetime(frame["timestamp"]).dt.normalize()))) if len(frame) else {}
            for day in group:
                part = by_day.get(day, frame.iloc[:0])
                store_.write(INFERENCE_FRAMES, {"day": str(day.date())}, part.reset_index(drop=True), metadata={
                    "checkpoint": str(ckpt), "checkpoints": [str(p) for p in paths],
                    "checkpoints_created_at": created_at,
                    "cutoff": str(cutoff.date()), "data_version": result.data_version,
                    "risk": result.risk.get(str(day.date()), {}) if isinstance(result.risk, dict) else {}})
                rows += len(part)
                summary.append({"day": str(day.date()), "symbols": len(part), "cutoff": str(cutoff.date()),
                                "gross_exposure": float(part["position"].abs().sum()) if len(part) else 0.0})
            if settings.inference.export_predictions and len(frame):
                export_predictions(market_db.path, frame, checkpoint_id=f"supervised@{cutoff.date()}/{agent.checkpoint_id}")
        return MaterializeResult(metadata={
            "rows": rows,
            "days": len(days),
            "checkpoints_used": MetadataValue.json(sorted({s["cutoff"] for s in summary})),
            "per_day": table(pd.DataFrame(summary)),
            "exported_to_sqlite": settings.inference.export_predictions,
            "store_path": MetadataValue.path(f"{store_.root}/{INFERENCE_FRAMES}"),
        })

    return inference_frames
