"""`EpochMetricsCallback`: one row of epoch-level metrics per training epoch, handed to a caller.

Lightning's hooks see ``trainer.callback_metrics`` at different stages of freshness (measured on
both our modules, Lightning 2.6):

- a callback's ``on_validation_epoch_end`` runs *before* the module's, so the stream metrics
  `SupervisedTradingModule` logs there (``val/sharpe``, ``val/ic``, ``val/max_drawdown``) are
  still missing or last epoch's, and ``val/sharpe`` still holds the loss's Sharpe penalty;
- ``on_validation_end`` sees every ``val/`` metric of this validation, but ``train/`` values of
  the previous epoch (or a single step's);
- ``on_train_epoch_end`` runs after the epoch's validation and sees both fresh.

So the row is emitted at ``on_train_epoch_end``, taking ``val/`` metrics only from a validation
that ran in this epoch (caught at ``on_validation_end``), so an epoch without validation never
repeats stale values. The sanity check and `Trainer.validate` (the runner re-validates the restored
weights after the fit) are not epochs of the fit and are ignored. Epochs are Lightning's 0-based
indices, as in the CSV/TensorBoard logs.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

_VAL_PREFIX = "val/"


def epoch_scalars(metrics: Mapping[str, object]) -> dict[str, float]:
    """Finite scalar epoch metrics of ``trainer.callback_metrics``, as floats.

    Lightning forks a metric logged ``on_step`` and ``on_epoch`` into ``name_step`` (one batch),
    ``name_epoch`` and ``name`` (both the epoch value): the first is not an epoch metric and the
    second a duplicate, so both go.
    """
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if name.endswith("_step") or (name.endswith("_epoch") and name[:-len("_epoch")] in metrics):
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


class EpochMetricsCallback(pl.Callback):
    """Keeps ``history`` (one ``{"epoch": e, metric: value}`` row per epoch) and calls
    ``on_epoch(epoch, metrics)`` as each epoch ends; ``best_epoch`` is the epoch whose ``monitor``
    value is best under ``mode`` (the first one on ties, as `ModelCheckpoint` keeps it)."""

    def __init__(self, on_epoch: Callable[[int, dict[str, float]], None] | None = None, *,
                 monitor: str = "val/loss", mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.on_epoch = on_epoch
        self.monitor = monitor
        self.mode = mode
        self.history: list[dict[str, float]] = []
        self._validation: tuple[int, dict[str, float]] | None = None   # (epoch, val/ metrics)

    @property
    def best_epoch(self) -> int | None:
        """Epoch with the best ``monitor`` value, None before any epoch reported it."""
        scored = [row for row in self.history if self.monitor in row]
        if not scored:
            return None
        pick = min if self.mode == "min" else max
        return int(pick(scored, key=lambda row: row[self.monitor])["epoch"])   # first of equals

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        fresh = {k: v for k, v in epoch_scalars(trainer.callback_metrics).items() if k.startswith(_VAL_PREFIX)}
        self._validation = (trainer.current_epoch, fresh)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        metrics = {k: v for k, v in epoch_scalars(trainer.callback_metrics).items()
                   if not k.startswith(_VAL_PREFIX)}
        if self._validation is not None and self._validation[0] == epoch:
            metrics.update(self._validation[1])
        self.history.append({"epoch": epoch, **metrics})
        if self.on_epoch is not None:
            self.on_epoch(epoch, metrics)   # after the append: on_epoch may read best_epoch
