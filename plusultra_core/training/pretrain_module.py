"""Self-supervised pretraining of any registry backbone: masked reconstruction, contrast, or both.

Dimension legend: ``B`` batch, ``T`` time steps, ``F`` features, ``D`` model width, ``H`` horizon.

``objective="masked"``: masked cells (`masking.generate_mask`) are replaced by a learned
per-feature mask token (a value the data never takes exactly, so the model can tell "hidden" from
"zero"), the backbone encodes the corrupted window, and a linear decoder maps
``BackboneOutput.steps [B, T, D]`` back to ``[B, T, F]``. The loss is the MSE on masked cells only
(the visible cells are trivial to copy).

``objective="contrastive"``: TS2Vec's hierarchical instance + temporal InfoNCE on two augmented,
overlapping crops of each window (`contrastive.contrastive_loss`), on the backbone's ``steps``
directly (no projection head, as TS2Vec). ``objective="both"``: masked + ``contrastive.weight`` x
contrastive, each term logged on its own.

Either way only the input window ``x`` is read (never the targets), and the backbone's weights
(`encoder_state_dict`) then warm-start the supervised model by name.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from plusultra_core.models.registry import build_backbone
from plusultra_core.training.config import OBJECTIVES, ContrastiveConfig, MaskingConfig, OptimConfig
from plusultra_core.training.contrastive import contrastive_loss
from plusultra_core.training.masking import generate_mask
from plusultra_core.training.optim import estimated_total_steps, lightning_optimizers

# Validation masks and crops come from a fixed seed so the val loss of different epochs is comparable.
_VAL_MASK_SEED = 1234
_VAL_CROP_SEED = 4321


class PretrainLightningModule(pl.LightningModule):
    """Masked-reconstruction and/or contrastive pretraining.

    ``model_cfg`` is the backbone's config dataclass for ``architecture``; ``horizon`` only sizes
    the backbone's horizon outputs (unused here) so its parameter shapes match the supervised
    model that will load them. The mask token and decoder exist only when the masked objective
    is trained (a contrastive run has no parameters outside the backbone).
    """

    def __init__(self, model_cfg, architecture: str, n_features: int, masking: MaskingConfig,
                 optim: OptimConfig, *, horizon: int = 1, objective: str = "masked",
                 contrastive: ContrastiveConfig | None = None):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
        self.architecture = architecture
        self.model_cfg = model_cfg
        self.masking = masking
        self.contrastive = contrastive or ContrastiveConfig()
        self.objective = objective
        self.optim_cfg = optim
        self.n_features = n_features
        self.backbone = build_backbone(architecture, model_cfg, n_features, horizon)
        if objective in ("masked", "both"):
            d_model = model_cfg.d_model
            self.mask_token = nn.Parameter(torch.zeros(n_features))                   # [F]
            self.decoder = nn.Linear(d_model, n_features)                             # D -> F

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step embeddings ``[B, T, D]`` of ``x [B, T, F]`` (the backbone's ``steps``)."""
        return self.backbone(x).steps

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

    def contrastive_loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hierarchical instance + temporal InfoNCE of one batch ``x [B, T, F]``."""
        return contrastive_loss(self.encode, x, self.contrastive, generator=generator)

    def losses(self, x: torch.Tensor, generators: dict | None = None) -> dict[str, torch.Tensor]:
        """``{"masked": ..., "contrastive": ..., "loss": total}`` for this run's objective."""
        generators = generators or {}
        out = {}
        if self.objective in ("masked", "both"):
            out["masked"] = self.masked_loss(x, generators.get("masked"))
        if self.objective in ("contrastive", "both"):
            out["contrastive"] = self.contrastive_loss(x, generators.get("contrastive"))
        if self.objective == "both":
            out["loss"] = out["masked"] + self.contrastive.weight * out["contrastive"]
        else:
            out["loss"] = out[self.objective]
        return out

    def _log_losses(self, stage: str, losses: dict, batch_size: int) -> None:
        step = stage == "train"
        for name in ("masked", "contrastive"):
            if name in losses:
                self.log(f"{stage}/{name}_loss", losses[name], prog_bar=True, on_step=step, on_epoch=True,
                         batch_size=batch_size)
        self.log(f"{stage}/loss", losses["loss"], on_step=False, on_epoch=True, batch_size=batch_size)

    def training_step(self, batch, batch_idx):
        losses = self.losses(batch[0])
        self._log_losses("train", losses, batch[0].shape[0])
        return losses["loss"]

    def validation_step(self, batch, batch_idx):
        device = batch[0].device
        gens = {"masked": torch.Generator(device=device).manual_seed(_VAL_MASK_SEED + batch_idx),
                "contrastive": torch.Generator(device=device).manual_seed(_VAL_CROP_SEED + batch_idx)}
        losses = self.losses(batch[0], gens)
        self._log_losses("val", losses, batch[0].shape[0])
        return losses["loss"]

    def configure_optimizers(self):
        return lightning_optimizers(self, self.optim_cfg, estimated_total_steps(self.trainer))

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's weights, keyed as in ``backbone.state_dict()`` (no ``backbone.`` prefix)."""
        return {k: v.detach().clone() for k, v in self.backbone.state_dict().items()}


# The name DESIGN.md and code written before the contrastive objective use (masked is the default).
MaskedTimeSeriesLightningModule = PretrainLightningModule
