"""Training group: masked pretraining and supervised fine-tuning per training cutoff.

One run per cutoff (each is its own model, and Dagster records metadata per run), so every
checkpoint's lineage — data version, features and their hash, config hash, train range, parent
checkpoint, validation metrics — is on its own partition in the UI and in its JSON sidecar.
"""

from pathlib import Path

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from plusultra_core.config import config_hash, load_config
from plusultra_core.walkforward import annotate_sidecar
from plusultra_pipeline.constants import (
    PRETRAINED_CHECKPOINT,
    SUPERVISED_CHECKPOINT,
    TRAINING_GROUP,
    WINDOW_TENSORS,
)
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings
from plusultra_pipeline.training_data import load_training_data

CHECKPOINT_DIR = "checkpoints"


def checkpoint_path(store_root, kind: str, cutoff: str) -> Path:
    """``<store>/checkpoints/<kind>/cutoff=<YYYY-MM-DD>/<kind>.pt``."""
    return Path(store_root) / CHECKPOINT_DIR / kind / f"cutoff={cutoff}" / f"{kind}.pt"


def _configure(cfg, settings: PipelineSettings, out_dir: Path):
    cfg.output_dir = str(out_dir)
    if settings.training.max_epochs:
        cfg.trainer.max_epochs = settings.training.max_epochs
    if settings.training.architecture:
        cfg.model.architecture = settings.training.architecture
    cfg.trainer.progress_bar = cfg.trainer.progress_bar and settings.training.progress_bar
    return cfg


def _metadata(info, lineage: dict, cfg_hash: str, parent) -> dict:
    metrics = {k: v for k, v in info.metrics.items() if isinstance(v, (int, float)) and v == v}
    return {
        "checkpoint": MetadataValue.path(str(info.path)),
        "data_version": lineage["data_version"],
        "feature_hash": lineage["feature_hash"],
        "features": len(lineage["feature_names"]),
        "config_hash": cfg_hash,
        "train_range": " .. ".join(str(x) for x in lineage["train_range"]),
        "parent_checkpoint": MetadataValue.path(str(parent)) if parent else "none",
        "validation_metrics": MetadataValue.json(metrics),
    }


def pretrain_config_for(settings: PipelineSettings, cutoff: str):
    """The pretraining config of one cutoff (file + pipeline overrides + output directory)."""
    from plusultra_core.training.config import PretrainConfig

    cfg = load_config(PretrainConfig, settings.project_path(settings.training.pretrain_config))
    return _configure(cfg, settings, checkpoint_path(settings.store_path, "pretrained", cutoff).parent)


def train_config_for(settings: PipelineSettings, cutoff: str):
    """The supervised config of one cutoff; ``pretrained`` names its warm-start parent."""
    from plusultra_core.training.config import TrainConfig

    cfg = load_config(TrainConfig, settings.project_path(settings.training.train_config))
    cfg = _configure(cfg, settings, checkpoint_path(settings.store_path, "supervised", cutoff).parent)
    parent = checkpoint_path(settings.store_path, "pretrained", cutoff)
    if settings.training.warm_start_from_previous:
        parent = previous_checkpoint(settings.store_path, "supervised", cutoff) or parent
    cfg.pretrained = str(parent)
    return cfg


def build_training_assets(settings: PipelineSettings, cutoffs_def):
    training = settings.training
    period = settings.history.period

    @asset(
        name=PRETRAINED_CHECKPOINT,
        partitions_def=cutoffs_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        ins={WINDOW_TENSORS: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing)},
        group_name=TRAINING_GROUP,
        code_version="1",
        kinds={"pytorch"},
    )
    def pretrained_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """Masked time-series reconstruction pretraining on every bar before the cutoff (minus a purge gap)."""
        from plusultra_core.training.runner import run_pretraining

        cutoff = context.partition_key
        data = load_training_data(store.store(), cutoff, period, training.purge_bars)
        cfg = pretrain_config_for(settings, cutoff)
        info = run_pretraining(cfg, frame=data.frame, feature_names=data.feature_names)
        lineage = data.lineage()
        cfg_hash = config_hash(cfg)
        annotate_sidecar(info.path, {**lineage, "cutoff": cutoff, "config_hash": cfg_hash,
                                     "purge_bars": training.purge_bars, "kind": "pretrained"})
        context.log.info(f"cutoff {cutoff}: pretrained on {len(data.frame)} rows {lineage['train_range']}")
        return MaterializeResult(metadata=_metadata(info, lineage, cfg_hash, None))

    @asset(
        name=SUPERVISED_CHECKPOINT,
        partitions_def=cutoffs_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        ins={WINDOW_TENSORS: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing),
             PRETRAINED_CHECKPOINT: AssetIn(dagster_type=Nothing)},
        group_name=TRAINING_GROUP,
        code_version="1",
        kinds={"pytorch"},
    )
    def supervised_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """CompositeTradingLoss fine-tune, warm-started from the same cutoff's pretrained checkpoint
        (or, with incremental retraining, from the previous cutoff's supervised one)."""
        from plusultra_core.training.runner import run_training

        cutoff = context.partition_key
        data = load_training_data(store.store(), cutoff, period, training.purge_bars)
        cfg = train_config_for(settings, cutoff)
        parent = Path(cfg.pretrained)
        info = run_training(cfg, frame=data.frame, feature_names=data.feature_names)
        lineage = data.lineage()
        cfg_hash = config_hash(cfg)
        annotate_sidecar(info.path, {**lineage, "cutoff": cutoff, "config_hash": cfg_hash,
                                     "purge_bars": training.purge_bars, "kind": "supervised",
                                     "parent": str(parent)})
        context.log.info(f"cutoff {cutoff}: supervised from {parent.name}; metrics {info.metrics}")
        return MaterializeResult(metadata=_metadata(info, lineage, cfg_hash, parent))

    return pretrained_checkpoint, supervised_checkpoint


def previous_checkpoint(store_root, kind: str, cutoff: str) -> Path | None:
    """The newest ``kind`` checkpoint with a cutoff strictly before ``cutoff``, if any."""
    found = stored_cutoffs(store_root, kind)
    earlier = [c for c in found if c < pd.Timestamp(cutoff)]
    return checkpoint_path(store_root, kind, str(max(earlier).date())) if earlier else None


def stored_cutoffs(store_root, kind: str) -> list[pd.Timestamp]:
    """Cutoffs that have a complete ``kind`` checkpoint (weights + sidecar) in the store."""
    base = Path(store_root) / CHECKPOINT_DIR / kind
    out = []
    for d in sorted(base.glob("cutoff=*")) if base.is_dir() else []:
        if (d / f"{kind}.pt").is_file() and (d / f"{kind}.pt.json").is_file():
            out.append(pd.Timestamp(d.name.split("=", 1)[1]))
    return out
