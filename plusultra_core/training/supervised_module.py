"""Supervised trading model: registry backbone + head + `CompositeTradingLoss`, in Lightning.

Dimension legend: ``B`` batch, ``T`` context steps, ``F`` features, ``D`` model width,
``H`` horizon steps.

Batches are ``(x [B, T, F], y [B, H], group [B], time [B])`` from `WindowDataModule`: ``y`` holds
the future returns of the ``H`` bars after the window, ``group``/``time`` identify the symbol and
the first target bar so validation can rebuild each symbol's PnL stream in time order. Training
batches are ``blocks`` time-contiguous blocks (the loss's Sharpe/drawdown run along time inside a
block); each validation batch is one block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pytorch_lightning as pl
import torch

from plusultra_core.errors import CheckpointError
from plusultra_core.heads import HeadConfig, build_head
from plusultra_core.losses import CompositeTradingLoss, LossConfig
from plusultra_core.models.registry import build_backbone
from plusultra_core.training.config import OptimConfig
from plusultra_core.training.optim import estimated_total_steps, lightning_optimizers
from plusultra_core.training.stream_metrics import stream_metrics

_BACKBONE_PREFIX = "backbone."


def backbone_weights(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone tensors of a module state dict (``backbone.`` prefix stripped); a dict without
    that prefix is taken to be a backbone state dict already."""
    if any(k.startswith(_BACKBONE_PREFIX) for k in state):
        return {k[len(_BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(_BACKBONE_PREFIX)}
    return dict(state)


def compare_state(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> dict[str, list]:
    """Keys missing from ``given``, unexpected in it, and present with another shape."""
    return {
        "missing": sorted(set(expected) - set(given)),
        "unexpected": sorted(set(given) - set(expected)),
        "shape_mismatch": sorted(
            f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
            for k in set(expected) & set(given) if tuple(given[k].shape) != tuple(expected[k].shape)),
    }


def _describe_mismatch(diff: dict[str, list], limit: int = 8) -> str:
    parts = []
    for kind, keys in diff.items():
        if keys:
            shown = ", ".join(keys[:limit]) + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")
            parts.append(f"{len(keys)} {kind.replace('_', '-')} [{shown}]")
    return "; ".join(parts)


class SupervisedTradingModule(pl.LightningModule):
    """Backbone + head trained with `CompositeTradingLoss` (+ ``aux_loss_weight`` × backbone aux loss).

    ``blocks_per_batch`` tells the loss how many time-contiguous blocks a training batch holds.
    Validation logs ``val/loss`` and, at epoch end, ``val/sharpe``, ``val/max_drawdown``,
    ``val/ic`` (see `stream_metrics`); `last_val_metrics` keeps the latest values.
    """

    def __init__(self, model_cfg, architecture: str, n_features: int, horizon: int,
                 head_cfg: HeadConfig, loss_cfg: LossConfig, optim: OptimConfig, *,
                 blocks_per_batch: int = 1, aux_loss_weight: float = 1.0):
        super().__init__()
        self.architecture = architecture
        self.model_cfg = model_cfg
        self.head_cfg = head_cfg
        self.loss_cfg = loss_cfg
        self.optim_cfg = optim
        self.n_features = n_features
        self.horizon = horizon
        self.blocks_per_batch = blocks_per_batch
        self.aux_loss_weight = aux_loss_weight
        self.backbone = build_backbone(architecture, model_cfg, n_features, horizon)
        self.head = build_head(head_cfg, model_cfg.d_model)
        self.loss_fn = CompositeTradingLoss(loss_cfg)
        self._val_outputs: list[tuple[torch.Tensor, ...]] = []
        self.last_val_metrics: dict[str, float] = {}

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor):
        """``x [B, T, F]`` -> ``(HeadOutput, aux_loss)``."""
        out = self.backbone(x)                                                      # steps [B,T,D], horizon [B,H,D]
        return self.head(out.horizon), out.aux_loss

    def _losses(self, batch, blocks: int):
        x, y = batch[0], batch[1]
        head_out, aux = self(x)
        parts = self.loss_fn(head_out, y, blocks=blocks)
        total = parts.total + self.aux_loss_weight * aux
        return head_out, parts, aux, total

    def _log_parts(self, stage: str, parts, aux, total, batch_size: int, on_step: bool):
        self.log(f"{stage}/loss", total, prog_bar=True, on_step=on_step, on_epoch=True, batch_size=batch_size)
        for name in ("prediction", "sharpe", "drawdown", "utility", "turnover", "mean_pnl", "head"):
            value = getattr(parts, name, None)
            if isinstance(value, torch.Tensor):
                self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        self.log(f"{stage}/aux_loss", aux, on_step=False, on_epoch=True, batch_size=batch_size)

    def training_step(self, batch, batch_idx):
        _, parts, aux, total = self._losses(batch, self.blocks_per_batch)
        self._log_parts("train", parts, aux, total, batch[0].shape[0], on_step=True)
        return total

    def validation_step(self, batch, batch_idx):
        head_out, parts, aux, total = self._losses(batch, 1)
        self._log_parts("val", parts, aux, total, batch[0].shape[0], on_step=False)
        self._val_outputs.append((
            head_out.position[:, 0].detach().float().cpu(),
            head_out.expected_return[:, 0].detach().float().cpu(),
            batch[1][:, 0].detach().float().cpu(),                                   # realised first-step return
            batch[2].detach().cpu(), batch[3].detach().cpu()))
        return total

    def on_validation_epoch_start(self):
        self._val_outputs = []

    def on_validation_epoch_end(self):
        if not self._val_outputs:
            return
        cols = [torch.cat(parts).numpy() for parts in zip(*self._val_outputs)]
        self._val_outputs = []
        result = stream_metrics(*cols, cost_bps=self.loss_cfg.cost_bps)
        self.last_val_metrics = result
        for key in ("sharpe", "max_drawdown", "ic", "turnover", "long_sharpe"):
            value = result.get(key, float("nan"))
            self.log(f"val/{key}", float(value) if np.isfinite(value) else 0.0, prog_bar=key == "sharpe")

    def predict_step(self, batch, batch_idx, dataloader_idx: int = 0):
        """`HeadOutput` of a batch (``x`` first in the tuple)."""
        head_out, _ = self(batch[0])
        return head_out

    def configure_optimizers(self):
        return lightning_optimizers(self, self.optim_cfg, estimated_total_steps(self.trainer))

    # ----------------------------------------------------------------------------- warm start
    def load_encoder(self, source: str | Path | Mapping[str, torch.Tensor], *, strict: bool = True) -> dict[str, list]:
        """Warm-start the backbone BY NAME from a state dict or a checkpoint path.

        Accepts a backbone state dict, a module state dict (``backbone.*`` keys are taken), or a
        checkpoint written by `save_checkpoint`. Raises `CheckpointError` listing missing,
        unexpected and shape-mismatched keys (``strict=False`` tolerates missing/unexpected keys,
        never shape mismatches). Returns the comparison.
        """
        where = "<state dict>"
        arch_note = ""
        if isinstance(source, (str, Path)):
            from plusultra_core.training.checkpoints import load_checkpoint
            state, meta = load_checkpoint(source)
            where = str(source)
            arch = meta.get("architecture")
            if arch and arch != self.architecture:
                arch_note = f" (checkpoint architecture '{arch}', model '{self.architecture}')"
        else:
            state = source
        given = backbone_weights(state)
        expected = self.backbone.state_dict()
        diff = compare_state(expected, given)
        fatal = diff["shape_mismatch"] or (strict and (diff["missing"] or diff["unexpected"]))
        if fatal or not set(expected) & set(given):
            raise CheckpointError(f"cannot warm-start {self.architecture} backbone from {where}{arch_note}: "
                                  f"{_describe_mismatch(diff) or 'no parameter names in common'}")
        self.backbone.load_state_dict({k: v for k, v in given.items() if k in expected}, strict=False)
        return diff
