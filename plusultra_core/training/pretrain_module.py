"""Masked time-series reconstruction pretraining of any registry backbone.

Dimension legend: ``B`` batch, ``T`` time steps, ``F`` features, ``D`` model width, ``H`` horizon.

Masked cells (`masking.generate_mask`) are replaced by a learned per-feature mask token (a value
the data never takes exactly, so the model can tell "hidden" from "zero"), the backbone encodes
the corrupted window, and a linear decoder maps ``BackboneOutput.steps [B, T, D]`` back to
``[B, T, F]``. The loss is the MSE on masked cells only (the visible cells are trivial to copy).
The backbone's weights (`encoder_state_dict`) then warm-start the supervised model by name.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from plusultra_core.models.registry import build_backbone
from plusultra_core.training.config import MaskingConfig, OptimConfig
from plusultra_core.training.masking import generate_mask
from plusultra_core.training.optim import estimated_total_steps, lightning_optimizers

# Validation masks come from a fixed seed so the val loss of different epochs is comparable.
_VAL_MASK_SEED = 1234


class MaskedTimeSeriesLightningModule(pl.LightningModule):
    """Masked-reconstruction pretraining.

    ``model_cfg`` is the backbone's config dataclass for ``architecture``; ``horizon`` only sizes
    the backbone's horizon outputs (unused here) so its parameter shapes match the supervised
    model that will load them.
    """

    def __init__(self, model_cfg, architecture: str, n_features: int, masking: MaskingConfig,
                 optim: OptimConfig, *, horizon: int = 1):
        super().__init__()
        self.architecture = architecture
        self.model_cfg = model_cfg
        self.masking = masking
        self.optim_cfg = optim
        self.n_features = n_features
        self.backbone = build_backbone(architecture, model_cfg, n_features, horizon)
        d_model = model_cfg.d_model
        self.mask_token = nn.Parameter(torch.zeros(n_features))                       # [F]
        self.decoder = nn.Linear(d_model, n_features)                                 # D -> F

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[B, T, F]`` of ``x [B, T, F]`` with ``mask`` cells replaced by the token."""
        corrupted = torch.where(mask, self.mask_token.to(x.dtype).expand_as(x), x)    # [B, T, F]
        steps = self.backbone(corrupted).steps                                        # [B, T, D]
        return self.decoder(steps)                                                    # [B, T, F]

    def masked_loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE over masked cells of one batch ``x [B, T, F]``."""
        b, t, f = x.shape
        mask = generate_mask(b, t, f, self.masking, device=x.device, generator=generator)
        recon = self.reconstruct(x, mask).float()
        err = (recon - x.float()).pow(2) * mask                                       # [B, T, F]
        return err.sum() / mask.sum().clamp_min(1)

    def training_step(self, batch, batch_idx):
        loss = self.masked_loss(batch[0])
        self.log("train/masked_loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=batch[0].shape[0])
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        gen = torch.Generator(device=batch[0].device).manual_seed(_VAL_MASK_SEED + batch_idx)
        loss = self.masked_loss(batch[0], generator=gen)
        self.log("val/masked_loss", loss, prog_bar=True, on_epoch=True, batch_size=batch[0].shape[0])
        self.log("val/loss", loss, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def configure_optimizers(self):
        return lightning_optimizers(self, self.optim_cfg, estimated_total_steps(self.trainer))

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's weights, keyed as in ``backbone.state_dict()`` (no ``backbone.`` prefix)."""
        return {k: v.detach().clone() for k, v in self.backbone.state_dict().items()}
