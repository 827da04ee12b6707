"""Training group: self-supervised pretraining and supervised fine-tuning per training cutoff.

One run per cutoff (each is its own set of models). With ``training.pretrain: false`` the group
has no pretrained checkpoint: each supervised model starts cold (its sidecar's ``parent`` is
null), the baseline against which pretraining is measured. A cutoff trains one model per seed of
``training.seeds``: pretraining seed ``s`` warm-starts supervised seed ``s``, so the seeds are
independent replicates and the evaluation can report their spread and their ensemble. Inside a
cutoff the split is the cutoff's (`plusultra_core.walkforward`): fit up to ``C - validation_months``,
early-stop on the purged slice after it, never see ``C - purge_bars`` or later. The config of each
run is `plusultra_pipeline.stage_config.cutoff_config`'s (the one `plusultra train` builds, plus
the cutoff's split and the training set's features), so its hash is the hash of what ran. Every
checkpoint's lineage -- data version, features and their hash, config hash, fit and validation
ranges, parent checkpoint, validation metrics -- is in its JSON sidecar and on its partition.

With ``training.rl_config`` set, ``rl_checkpoint`` follows: each seed's supervised checkpoint
PPO-fine-tuned on the execution simulator (`plusultra_core.rl.run_rl`) over the same fit range,
its weights selected on the same validation slice, written in the supervised format.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from plusultra_core.config import config_hash
from plusultra_core.walkforward import annotate_sidecar
from plusultra_pipeline.constants import (
    PRETRAINED_CHECKPOINT,
    RL_CHECKPOINT,
    SUPERVISED_CHECKPOINT,
    TRAINING_GROUP,
    TRAINING_SET,
)
from plusultra_pipeline.code_versions import rl_code_version, training_code_version
from plusultra_pipeline.events import file_version
from plusultra_pipeline.executors import training_op_tags
from plusultra_pipeline.training_metrics import display_value, epoch_logger, epoch_metadata
from plusultra_pipeline.layout import checkpoint_path
from plusultra_pipeline.metadata import table
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings
from plusultra_pipeline.stage_config import cutoff_config
from plusultra_pipeline.training_data import load_training_data


def _numbers(metrics: dict) -> dict[str, float]:
    return {k: float(f"{float(v):.6g}") for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}


def _metadata(infos: list, seeds, lineage: dict, hashes: list[str], parents: list) -> dict:
    """Per-seed rows plus seed-mean numbers (floats the Plots tab can chart across cutoffs)."""
    rows = [{"seed": int(s), **_numbers(info.metrics), "config_hash": h, "checkpoint": str(info.path)}
            for s, info, h in zip(seeds, infos, hashes)]
    per_seed = pd.DataFrame(rows)
    numeric = per_seed.drop(columns=["seed"]).select_dtypes("number")
    meta = {
        "seeds": len(infos),
        "checkpoints": MetadataValue.json([str(i.path) for i in infos]),
        "data_version": lineage["data_version"],
        "feature_hash": lineage["feature_hash"],
        "features": len(lineage["feature_names"]),
        "config_hashes": MetadataValue.json(sorted(set(hashes))),
        "train_range": " .. ".join(str(x) for x in lineage["train_range"]),
        "fit_range": " .. ".join(str(x) for x in lineage["fit_range"]),
        "validation_range": " .. ".join(str(x) for x in lineage["validation_range"]),
        "parent_checkpoints": MetadataValue.json([str(p) for p in parents]) if any(parents) else "none",
        "per_seed": table(per_seed),
    }
    if "val/loss" in numeric and len(numeric) > 1:  # the seed mean is `val/loss` (training_metrics)
        meta["val/loss (seed std)"] = display_value("val/loss", float(np.nanstd(numeric["val/loss"], ddof=1)))
    return meta


WEIGHTS_CHECK = "weights_finite"
SIDECAR_CHECK = "sidecar_matches_partition"


def checkpoint_checks(kind: str, cutoff: str, paths, lineage: dict) -> list[AssetCheckResult]:
    """Per-partition checks of a cutoff's checkpoints: every weight finite; each sidecar names this
    cutoff, its seed and the training set's data and feature versions."""
    import torch

    from plusultra_core.training.checkpoints import load_checkpoint

    bad_weights, mismatches = [], []
    for seed, path in paths:
        state, side = load_checkpoint(path)
        if not all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point()):
            bad_weights.append(int(seed))
        expected = {"cutoff": cutoff, "seed": int(seed), "data_version": lineage["data_version"],
                    "feature_hash": lineage["feature_hash"], "kind": kind}
        wrong = {k: side.get(k) for k, v in expected.items() if side.get(k) != v}
        if wrong:
            mismatches.append(f"seed {seed}: {wrong}")
    asset = f"{kind}_checkpoint"
    return [AssetCheckResult(asset_key=asset, check_name=WEIGHTS_CHECK, passed=not bad_weights,
                             metadata={"seeds_with_non_finite_weights": MetadataValue.json(bad_weights)}),
            AssetCheckResult(asset_key=asset, check_name=SIDECAR_CHECK, passed=not mismatches,
                             metadata={"mismatches": MetadataValue.text("; ".join(mismatches) or "none")})]


def _check_specs(asset: str, cutoffs_def) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(WEIGHTS_CHECK, asset=asset, partitions_def=cutoffs_def,
                           description="Every floating-point weight of every seed's checkpoint is finite."),
            AssetCheckSpec(SIDECAR_CHECK, asset=asset, partitions_def=cutoffs_def,
                           description="Each seed's sidecar names this cutoff and seed, and the training set's "
                                       "data version and feature hash.")]


def build_training_assets(settings: PipelineSettings, cutoffs_def):
    training = settings.training
    period = settings.history.period
    gpu_tags = training_op_tags()  # $PLUSULTRA_TRAINING_GPUS: the step pod's GPU request (k8s / Celery)

    def train_seeds(context, store, kind: str, run, stage: str):
        cutoff = context.partition_key
        data = load_training_data(store.store(), cutoff, period, training.cutoff_window)
        lineage = data.lineage()
        infos, hashes, parents, watch = [], [], [], {}
        for seed in training.seeds:  # a handful of independent replicates: one fit each
            cfg = cutoff_config(stage, settings, cutoff, seed, data.feature_names, store.root)  # what runs
            watch[seed] = epoch_logger(context, cutoff, seed, cfg.trainer)  # a log line per epoch
            info = run(cfg, frame=data.frame, feature_names=cfg.data.feature_names, callbacks=[watch[seed]])
            cfg_hash = config_hash(cfg)
            parent = getattr(cfg, "pretrained", None)
            annotate_sidecar(info.path, {**lineage, "cutoff": cutoff, "config_hash": cfg_hash, "seed": int(seed),
                                         "purge_bars": training.purge_bars, "kind": kind, "parent": parent})
            context.log.info(f"cutoff {cutoff} seed {seed}: {kind} on {len(data.frame)} rows, fit "
                             f"{lineage['fit_range']}, validation {lineage['validation_range']}; "
                             f"metrics {_numbers(info.metrics)}")
            infos.append(info)
            hashes.append(cfg_hash)
            parents.append(parent)
        paths = [Path(i.path) for i in infos]
        yield MaterializeResult(asset_key=f"{kind}_checkpoint",
                                metadata={**_metadata(infos, training.seeds, lineage, hashes, parents),
                                          **epoch_metadata(watch),
                                          "path": MetadataValue.path(str(store.location(f"{kind}_checkpoint", cutoff)))},
                                data_version=DataVersion(file_version(paths)))
        yield from checkpoint_checks(kind, cutoff, list(zip(training.seeds, paths)), lineage)

    def checkpoint_asset(name: str, deps: list, code_version: str, **kwargs):
        """The decorator of a checkpoint asset: a run per cutoff (each trains every seed), on the
        training step's GPUs, with the weights and sidecar checks."""
        return asset(name=name, partitions_def=cutoffs_def,
                     backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1), deps=deps,
                     group_name=TRAINING_GROUP, code_version=code_version, kinds={"pytorch"},
                     op_tags=gpu_tags, check_specs=_check_specs(name, cutoffs_def), **kwargs)

    @checkpoint_asset(PRETRAINED_CHECKPOINT, [TRAINING_SET], training_code_version(settings, "pretrain"))
    def pretrained_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """Self-supervised pretraining (the pretrain config's objective: masked, contrastive or both) per seed on the bars before the cutoff (fit, then purged validation)."""
        from plusultra_core.training.runner import run_pretraining

        yield from train_seeds(context, store, "pretrained", run_pretraining, "pretrain")

    @checkpoint_asset(
        SUPERVISED_CHECKPOINT,
        # without pretraining the asset has no pretrained parent: the graph shows what the model started from
        [TRAINING_SET, PRETRAINED_CHECKPOINT] if training.pretrain else [TRAINING_SET],
        training_code_version(settings, "train"),
        description=None if training.pretrain else
        "CompositeTradingLoss fine-tune per seed from a cold start (training.pretrain is false), or, with "
        "incremental retraining, from the previous cutoff's supervised checkpoint.",
    )
    def supervised_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """CompositeTradingLoss fine-tune per seed, warm-started from the same cutoff and seed's pretrained checkpoint
        (or, with incremental retraining, from the previous cutoff's supervised one)."""
        from plusultra_core.training.runner import run_training

        yield from train_seeds(context, store, "supervised", run_training, "train")

    pretraining = (pretrained_checkpoint,) if training.pretrain else ()  # training.pretrain: false = cold start
    if not training.rl_enabled:
        return (*pretraining, supervised_checkpoint)

    @checkpoint_asset(RL_CHECKPOINT, [TRAINING_SET, SUPERVISED_CHECKPOINT], rl_code_version(settings))
    def rl_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """PPO fine-tune per seed of the same cutoff and seed's supervised policy on the execution simulator (net PnL minus a risk term), selected on the purged validation slice."""
        from plusultra_core.rl import load_rl_config, run_rl

        cutoff = context.partition_key
        data = load_training_data(store.store(), cutoff, period, training.cutoff_window)
        lineage = data.lineage()
        base = load_rl_config(settings.project_path(training.rl_config))
        infos, hashes, parents = [], [], []
        for seed in training.seeds:  # one PPO run per supervised seed
            cfg = replace(base, seed=base.seed + int(seed))
            parent = checkpoint_path(store.root, "supervised", cutoff, seed)
            info = run_rl(parent, data.frame, cfg, checkpoint_path(store.root, "rl", cutoff, seed),
                          fit_end=data.split.fit_end, log=context.log.info)
            cfg_hash = config_hash(cfg.to_dict())
            annotate_sidecar(info.path, {**lineage, "cutoff": cutoff, "config_hash": cfg_hash, "seed": int(seed),
                                         "purge_bars": training.purge_bars, "kind": "rl", "parent": str(parent)})
            context.log.info(f"cutoff {cutoff} seed {seed}: rl from {parent.name}, metrics {_numbers(info.metrics)}")
            infos.append(info)
            hashes.append(cfg_hash)
            parents.append(str(parent))
        paths = [Path(i.path) for i in infos]
        yield MaterializeResult(asset_key=RL_CHECKPOINT,
                                metadata={**_metadata(infos, training.seeds, lineage, hashes, parents),
                                          "path": MetadataValue.path(str(store.location(RL_CHECKPOINT, cutoff)))},
                                data_version=DataVersion(file_version(paths)))
        yield from checkpoint_checks("rl", cutoff, list(zip(training.seeds, paths)), lineage)

    return (*pretraining, supervised_checkpoint, rl_checkpoint)
