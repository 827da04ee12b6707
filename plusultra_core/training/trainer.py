"""`build_trainer`: one Lightning Trainer recipe for both training stages.

Best-by-monitor checkpointing (weights only), early stopping, CSV logs (+ TensorBoard when the
package is importable), a progress bar (Rich when available), gradient clipping, and the
precision asked for. ``seed_everything`` + ``deterministic=True`` make seeded CPU runs repeat to
the bit: same seed, same batches, same masks, same metrics.

Several processes (``strategy: ddp``) train on shards of every global batch that
`WindowDataModule` cuts itself; Lightning's own distributed sampler is off
(``use_distributed_sampler=False``) because it would wrap the block sampler and reshuffle whole
batches with its own seed, so a 2-process run would see other batches than a 1-process run of
the same config. Checkpoints and logs are written by rank 0 only (Lightning's `ModelCheckpoint`
and loggers; `runner` for the final checkpoint).
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


def _strategy(cfg: TrainerConfig):
    """Lightning's strategy for ``cfg.strategy``. DDP looks for unused parameters: a backbone's
    outputs the supervised head never reads (its per-step features) and the experts a top-k MoE
    router skipped in a batch get no gradient, and plain DDP would stop on them."""
    if cfg.strategy == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        return DDPStrategy(find_unused_parameters=True)  # process group: gloo on CPU, NCCL on CUDA
    return cfg.strategy


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
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=_strategy(cfg), num_nodes=cfg.num_nodes,
        use_distributed_sampler=False, deterministic=cfg.deterministic,
        gradient_clip_val=gradient_clip_val or None, gradient_clip_algorithm="norm",
        callbacks=[*recipe, *callbacks], logger=loggers, log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.progress_bar, enable_model_summary=False,
        default_root_dir=str(out_dir), num_sanity_val_steps=0, **kwargs)
