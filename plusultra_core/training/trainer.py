"""`build_trainer`: one Lightning Trainer recipe for both training stages.

Best-by-monitor checkpointing (weights only), early stopping, CSV logs (+ TensorBoard when the
package is importable), a progress bar (Rich when available), gradient clipping, and the
precision asked for. ``seed_everything`` + ``deterministic=True`` make seeded CPU runs repeat to
the bit: same seed, same batches, same masks, same metrics.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from plusultra_core.training.config import TrainerConfig


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (and their worker processes)."""
    pl.seed_everything(seed, workers=True, verbose=False)


def build_trainer(cfg: TrainerConfig, out_dir: str | Path, *, gradient_clip_val: float | None = None,
                  name: str = "run", callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """A Trainer writing logs under ``<out_dir>/<cfg.log_dir>/<name>`` and the best Lightning
    checkpoint under ``<out_dir>/lightning/`` (see ``trainer.checkpoint_callback.best_model_path``).
    ``callbacks`` (e.g. an `EpochMetricsCallback` reporting to the caller) join the recipe's own."""
    out_dir = Path(out_dir)
    if cfg.num_threads is not None:
        # small models on a shared CPU: extra intra-op threads spin-wait and can be 10x slower
        torch.set_num_threads(cfg.num_threads)
    seed_all(cfg.seed)
    checkpoint = ModelCheckpoint(dirpath=out_dir / "lightning", filename="best", monitor=cfg.monitor,
                                 mode=cfg.monitor_mode, save_top_k=1, save_weights_only=True,
                                 enable_version_counter=False)
    recipe: list = [checkpoint]
    if cfg.early_stopping_patience:
        recipe.append(EarlyStopping(monitor=cfg.monitor, mode=cfg.monitor_mode,
                                       patience=cfg.early_stopping_patience, check_finite=True))
    if cfg.progress_bar:
        if importlib.util.find_spec("rich") is not None:
            from pytorch_lightning.callbacks import RichProgressBar
            recipe.append(RichProgressBar(leave=False))
        else:
            from pytorch_lightning.callbacks import TQDMProgressBar
            recipe.append(TQDMProgressBar())
    log_root = out_dir / cfg.log_dir
    loggers: list = [pl.loggers.CSVLogger(log_root, name=name)]
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is not None:
        loggers.append(pl.loggers.TensorBoardLogger(log_root, name=name, default_hp_metric=False))
    kwargs = {}
    for key in ("limit_train_batches", "limit_val_batches"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    # Lightning warns about num_workers=0 and small logging intervals; both are deliberate here.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    return pl.Trainer(
        max_epochs=cfg.max_epochs, max_steps=cfg.max_steps, precision=cfg.precision,
        accelerator=cfg.accelerator, devices=cfg.devices, deterministic=cfg.deterministic,
        gradient_clip_val=gradient_clip_val or None, gradient_clip_algorithm="norm",
        callbacks=[*recipe, *callbacks], logger=loggers, log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.progress_bar, enable_model_summary=False,
        default_root_dir=str(out_dir), num_sanity_val_steps=0, **kwargs)
