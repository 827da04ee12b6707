"""`run_pretraining` / `run_training`: config (+ optional window frame) in, checkpoint out.

These are what the CLI and the Dagster assets call. Given a window frame (from the store), they
touch the file system only under ``cfg.output_dir``; without one they build it from the SQLite
database (`SQLiteMarketDataset.load_panel` -> `FeaturePipeline.transform_panel` ->
`build_window_frame`). Each run seeds everything first, fits, restores the best weights by the
monitored validation loss, re-validates them, scores the held-out test split, and writes
``pretrained.pt`` / ``supervised.pt`` with a JSON sidecar (see `checkpoints`). Extra Lightning
``callbacks`` (e.g. `epoch_metrics.EpochMetricsCallback`) let a caller watch the fit as it runs.

Under ``trainer.strategy: ddp`` every rank runs all of this (fit, restore, validate, score: the
collectives need every rank) and only rank 0 writes the checkpoint and its sidecar; the others
return the same description unwritten (`_save_on_rank_zero`). Ranks on several nodes read the best
Lightning checkpoint rank 0 wrote, so ``output_dir`` must be storage every node sees.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from plusultra_core.config import to_dict
from plusultra_core.errors import CheckpointError, ConfigError
from plusultra_core.training.checkpoints import (CheckpointInfo, feature_hash, read_sidecar,
                                                 save_checkpoint, sidecar_path)
from plusultra_core.training.config import DataConfig, PretrainConfig, TrainConfig, build_model_config
from plusultra_core.training.datamodule import WindowDataModule, blocks_per_rank
from plusultra_core.training.stream_metrics import stream_metrics
from plusultra_core.training.trainer import build_trainer

PRETRAINED_NAME = "pretrained.pt"
SUPERVISED_NAME = "supervised.pt"
_FRAME_KEYS = ("timestamp", "symbol", "valid")


def build_frame_from_db(data: DataConfig) -> tuple[pd.DataFrame, list[str]]:
    """Window frame and input feature names from the SQLite database named in ``data``."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_core.features import FeaturePipeline
    from plusultra_core.windows import build_window_frame

    if not Path(data.db_path).is_file():
        raise ConfigError(f"data.db_path: database not found: {data.db_path}")
    dataset = SQLiteMarketDataset(data.db_path)
    # None means every symbol / feature; DataConfig refuses an empty list, so none is passed on
    panel = dataset.load_panel(symbols=data.symbols, start=data.start, end=data.end)
    selection = FeaturePipeline(names=data.feature_names, tags=data.feature_tags)
    wanted = list(selection.feature_names)
    # the target stream is a feature too: compute it even when it is not a model input
    pipeline = selection if data.return_column in wanted else FeaturePipeline(names=[*wanted, data.return_column])
    features = pipeline.transform_panel(panel)
    # features whose inputs the database lacks (e.g. no VIX series) are skipped by the pipeline
    inputs = [name for name in wanted if name in features.columns]
    if not inputs or data.return_column not in features.columns:
        raise ConfigError(f"feature selection (names={data.feature_names}, tags={data.feature_tags}) "
                          f"yields inputs {inputs} and no '{data.return_column}' column")
    return build_window_frame(features, inputs, return_column=data.return_column), inputs


def _resolve_frame(data: DataConfig, frame: pd.DataFrame | None,
                   feature_names: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    if frame is None:
        return build_frame_from_db(data)
    if feature_names is None:
        feature_names = data.feature_names or [c for c in frame.columns if c not in _FRAME_KEYS]
    return frame, list(feature_names)


def _data_range(frame: pd.DataFrame) -> dict[str, Any]:
    times = frame["timestamp"]
    return {"start": str(pd.Timestamp(times.min()).date()), "end": str(pd.Timestamp(times.max()).date()),
            "symbols": sorted(map(str, pd.unique(frame["symbol"]))), "rows": int(len(frame))}


def _restore_best(trainer, module) -> float | None:
    """Load the best Lightning checkpoint's weights into ``module``; return its monitored score."""
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback is not None else ""
    if path and os.path.isfile(path):
        blob = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(blob["state_dict"])
    trainer.strategy.barrier("best-weights-loaded")  # DDP: every rank has read the file before rank 0 deletes it
    if path and os.path.isfile(path) and trainer.is_global_zero:
        os.unlink(path)  # the plain-state checkpoint written below replaces it
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass  # not empty: something else lives there
    score = getattr(callback, "best_model_score", None)
    return float(score) if score is not None else None


def _validated_metrics(trainer, module, dm) -> dict[str, float]:
    """Metrics of the restored weights on the validation split (``val/...`` keys)."""
    results = trainer.validate(module, datamodule=dm, verbose=False)
    merged = {k: float(v) for row in results for k, v in row.items()}
    for key, value in getattr(module, "last_val_metrics", {}).items():
        merged[f"val/{key}"] = float(value)
    return merged


@torch.no_grad()
def evaluate_split(module, dm: WindowDataModule, split: str = "test", *, cost_bps: float) -> dict[str, float]:
    """Trading metrics (`stream_metrics`) of ``module`` on one split, in time order per symbol."""
    module.eval()
    cols: list[list[np.ndarray]] = [[], [], [], [], []]
    for block in dm.eval_blocks(split):
        x, y, group, time = dm._view[block]
        out, _ = module(x)
        for store, arr in zip(cols, (out.position[:, 0], out.expected_return[:, 0], y[:, 0], group, time)):
            store.append(arr.float().numpy() if arr.is_floating_point() else arr.numpy())
    if not cols[0]:
        return {}
    return stream_metrics(*(np.concatenate(c) for c in cols), cost_bps=cost_bps)


def _save_on_rank_zero(trainer, path: Path, state, sidecar: dict) -> CheckpointInfo:
    """`save_checkpoint` on rank 0 only; every rank returns once the files are written, the others
    with the same (unwritten) description."""
    info = save_checkpoint(path, state, sidecar) if trainer.is_global_zero else None
    trainer.strategy.barrier("checkpoint-written")
    if info is None:
        info = CheckpointInfo(path=Path(path), sidecar_path=sidecar_path(path),
                              metrics=dict(sidecar.get("metrics") or {}), sidecar=dict(sidecar))
    return info


def _sidecar(kind: str, cfg, model_cfg, names, frame, dm, metrics, parent=None, extra=None) -> dict:
    side = {
        "kind": kind, "architecture": cfg.model.architecture, "model_config": to_dict(model_cfg),
        "config": to_dict(cfg), "feature_names": list(names), "feature_hash": feature_hash(names),
        "n_features": len(names), "context_length": cfg.data.context_length,
        "horizon": cfg.data.horizon, "zscore": cfg.data.zscore, "return_column": cfg.data.return_column,
        "data_range": _data_range(frame), "splits": dm.split_summary(), "metrics": metrics,
        "parent": str(parent) if parent else None,
    }
    side.update(extra or {})
    return side


def run_pretraining(cfg: PretrainConfig, frame: pd.DataFrame | None = None, *,
                    feature_names: Sequence[str] | None = None,
                    callbacks: Sequence[pl.Callback] = ()) -> CheckpointInfo:
    """Self-supervised pretraining (``cfg.objective``: masked, contrastive or both); writes
    ``<output_dir>/pretrained.pt`` (+ ``.json``)."""
    from plusultra_core.training.pretrain_module import PretrainLightningModule

    frame, names = _resolve_frame(cfg.data, frame, feature_names)
    model_cfg = build_model_config(cfg.model)
    out_dir = Path(cfg.output_dir)
    trainer = build_trainer(cfg.trainer, out_dir, gradient_clip_val=cfg.optim.grad_clip, name="pretrain",
                            callbacks=callbacks)
    dm = WindowDataModule.from_frame(frame, cfg.data, names, seed=cfg.trainer.seed)
    module = PretrainLightningModule(model_cfg, cfg.model.architecture, len(names), cfg.masking, cfg.optim,
                                     horizon=cfg.data.horizon, objective=cfg.objective, contrastive=cfg.contrastive)
    trainer.fit(module, datamodule=dm)
    best = _restore_best(trainer, module)
    metrics = _validated_metrics(trainer, module, dm)
    metrics.update({"best_score": best, "epochs": trainer.current_epoch, "steps": trainer.global_step})
    return _save_on_rank_zero(trainer, out_dir / PRETRAINED_NAME, module.state_dict(),
                              _sidecar("pretrain", cfg, model_cfg, names, frame, dm, metrics,
                                       extra={"objective": cfg.objective, "masking": to_dict(cfg.masking),
                                              "contrastive": to_dict(cfg.contrastive)}))


def _check_parent_features(path: str, names: Sequence[str]) -> None:
    """The warm-start checkpoint must have seen the same features in the same order."""
    if not Path(path).is_file():
        raise CheckpointError(f"pretrained checkpoint not found: {path}")
    meta = read_sidecar(path)
    parent_hash = meta.get("feature_hash")
    if parent_hash and parent_hash != feature_hash(names):
        raise CheckpointError(
            f"{path}: pretrained on other features ({meta.get('feature_names')}) than this run "
            f"({list(names)}); the input layout must match to warm-start")


def run_training(cfg: TrainConfig, frame: pd.DataFrame | None = None, *,
                 feature_names: Sequence[str] | None = None,
                 callbacks: Sequence[pl.Callback] = ()) -> CheckpointInfo:
    """Supervised trading fine-tune (warm-started from ``cfg.pretrained`` when set); writes
    ``<output_dir>/supervised.pt`` (+ ``.json``) with validation and test metrics."""
    from plusultra_core.training.supervised_module import SupervisedTradingModule

    frame, names = _resolve_frame(cfg.data, frame, feature_names)
    model_cfg = build_model_config(cfg.model)
    out_dir = Path(cfg.output_dir)
    if cfg.pretrained:
        _check_parent_features(cfg.pretrained, names)
    trainer = build_trainer(cfg.trainer, out_dir, gradient_clip_val=cfg.optim.grad_clip, name="train",
                            callbacks=callbacks)
    dm = WindowDataModule.from_frame(frame, cfg.data, names, seed=cfg.trainer.seed)
    module = SupervisedTradingModule(model_cfg, cfg.model.architecture, len(names), cfg.data.horizon,
                                     cfg.head, cfg.loss, cfg.optim,
                                     blocks_per_batch=blocks_per_rank(cfg.data, trainer.world_size),
                                     aux_loss_weight=cfg.aux_loss_weight)
    if cfg.pretrained:
        module.load_encoder(cfg.pretrained)
    trainer.fit(module, datamodule=dm)
    best = _restore_best(trainer, module)
    metrics = _validated_metrics(trainer, module, dm)
    metrics.update({f"test/{k}": v for k, v in
                    evaluate_split(module, dm, "test", cost_bps=cfg.loss.cost_bps).items()})
    metrics.update({"best_score": best, "epochs": trainer.current_epoch, "steps": trainer.global_step})
    return _save_on_rank_zero(trainer, out_dir / SUPERVISED_NAME, module.state_dict(),
                              _sidecar("supervised", cfg, model_cfg, names, frame, dm, metrics,
                                       parent=cfg.pretrained,
                                       extra={"head_config": to_dict(cfg.head), "loss_config": to_dict(cfg.loss)}))
