"""Training a cutoff's checkpoints, one fit per seed: what the training assets run.

`train_cutoff` is the one seed loop every checkpoint asset runs: it loads the cutoff's training
data, calls a per-seed fit for each seed of ``training.seeds``, writes each checkpoint's lineage
into its sidecar (`annotate_sidecar`: data version, features, config hash, seed, purge, kind,
parent), logs a line per seed, then yields the partition's materialisation (per-seed table,
seed means, lineage; data version = the checkpoints' files) and its `checkpoint_checks`. The
per-seed fits are `stage_fit` (self-supervised pretraining or the supervised fine-tune, with a
log line per epoch) and `rl_fit` (PPO from the same seed's supervised checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue

from plusultra_core.config import config_hash
from plusultra_core.walkforward import annotate_sidecar
from plusultra_pipeline.events import file_version
from plusultra_pipeline.layout import checkpoint_path
from plusultra_pipeline.metadata import table
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings
from plusultra_pipeline.stage_config import cutoff_config
from plusultra_pipeline.training_data import TrainingData, load_training_data
from plusultra_pipeline.training_metrics import display_value, epoch_logger, epoch_metadata

if TYPE_CHECKING:  # torch + Lightning: a training step pays their import, not loading the definitions
    from plusultra_core.training.epoch_metrics import EpochMetricsCallback

WEIGHTS_CHECK = "weights_finite"
SIDECAR_CHECK = "sidecar_matches_partition"


@dataclass(frozen=True)
class SeedFit:
    """One seed's finished fit, as the seed loop records it."""

    info: object                  # the runner's result: the checkpoint's ``path`` and its ``metrics``
    config_hash: str              # hash of the configuration that ran
    parent: str | None            # the checkpoint it started from (None: a cold start)
    described: str                # what ran, for the seed's log line ("on N rows, fit .., validation ..;")
    epochs: EpochMetricsCallback | None = None  # its per-epoch history, when the runner reports one


FitSeed = Callable[[int, TrainingData], SeedFit]


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


def train_cutoff(settings: PipelineSettings, store: PartitionStore, cutoff: str, kind: str, fit: FitSeed,
                 log) -> Iterator:
    """Train ``cutoff``'s ``{kind}_checkpoint``: ``fit(seed, data)`` for each seed of
    ``training.seeds`` (a handful of independent replicates), each sidecar annotated with the
    checkpoint's lineage and a line per seed to ``log``; yields the materialisation (with the
    epoch history when the fits report one) and the `checkpoint_checks`."""
    training = settings.training
    data = load_training_data(store.store(), cutoff, settings.history.period, training.cutoff_window)
    lineage = data.lineage()
    fits = []
    for seed in training.seeds:
        done = fit(seed, data)
        annotate_sidecar(done.info.path, {**lineage, "cutoff": cutoff, "config_hash": done.config_hash,
                                          "seed": int(seed), "purge_bars": training.purge_bars, "kind": kind,
                                          "parent": done.parent})
        log.info(f"cutoff {cutoff} seed {seed}: {kind} {done.described} metrics {_numbers(done.info.metrics)}")
        fits.append(done)
    paths = [Path(f.info.path) for f in fits]
    watch = {seed: f.epochs for seed, f in zip(training.seeds, fits) if f.epochs is not None}
    metadata = _metadata([f.info for f in fits], training.seeds, lineage, [f.config_hash for f in fits],
                         [f.parent for f in fits])
    yield MaterializeResult(asset_key=f"{kind}_checkpoint",
                            metadata={**metadata, **epoch_metadata(watch),
                                      "path": MetadataValue.path(str(store.location(f"{kind}_checkpoint", cutoff)))},
                            data_version=DataVersion(file_version(paths)))
    yield from checkpoint_checks(kind, cutoff, list(zip(training.seeds, paths)), lineage)


def stage_fit(settings: PipelineSettings, store_root, cutoff: str, stage: str, run,
              context: AssetExecutionContext) -> FitSeed:
    """The per-seed fit of training stage ``stage`` (``pretrain`` or ``train``) with its runner
    ``run`` (`run_pretraining`, `run_training`): the cutoff's config (`stage_config.cutoff_config`,
    the one `plusultra train` builds) and a line per epoch to ``context``'s log."""

    def fit(seed: int, data: TrainingData) -> SeedFit:
        cfg = cutoff_config(stage, settings, cutoff, seed, data.feature_names, store_root)  # what runs
        watch = epoch_logger(context, cutoff, seed, cfg.trainer)  # a log line per epoch
        info = run(cfg, frame=data.frame, feature_names=cfg.data.feature_names, callbacks=[watch])
        split = data.split.lineage()
        return SeedFit(info, config_hash(cfg), getattr(cfg, "pretrained", None),
                       f"on {len(data.frame)} rows, fit {split['fit_range']}, "
                       f"validation {split['validation_range']};", epochs=watch)

    return fit


def rl_fit(settings: PipelineSettings, store_root, cutoff: str, log) -> FitSeed:
    """The per-seed RL fit: PPO (`plusultra_core.rl.run_rl`, ``training.rl_config`` with its seed
    offset by the seed) from the same cutoff and seed's supervised checkpoint, over the fit range,
    progress to ``log``."""
    from plusultra_core.rl import load_rl_config, run_rl

    base = load_rl_config(settings.project_path(settings.training.rl_config))

    def fit(seed: int, data: TrainingData) -> SeedFit:
        cfg = replace(base, seed=base.seed + int(seed))
        parent = checkpoint_path(store_root, "supervised", cutoff, seed)
        info = run_rl(parent, data.frame, cfg, checkpoint_path(store_root, "rl", cutoff, seed),
                      fit_end=data.split.fit_end, log=log.info)
        return SeedFit(info, config_hash(cfg.to_dict()), str(parent), f"from {parent.name},")

    return fit
