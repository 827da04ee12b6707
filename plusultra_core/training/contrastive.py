"""TS2Vec-style hierarchical contrastive pretraining for causal backbones.

Dimension legend: ``B`` batch, ``T`` window steps, ``F`` features, ``D`` model width, ``L`` crop
steps, ``O`` overlap steps.

Follows TS2Vec (Yue et al., 2022, "TS2Vec: Towards Universal Representation of Time Series"):
two overlapping random crops of every window are encoded, and the embeddings of the same time
step in the two views are the positive pair of an InfoNCE loss. The *instance* term contrasts a
step against the same step of the other windows of the batch, the *temporal* term against the
other steps of the same window, and both are applied at every level of a hierarchy that
max-pools the overlap over time by 2 until one step is left (`hierarchical_contrastive_loss`,
the reference's loss term for term).

Adapted to causal backbones: an embedding at step t sees steps ``<= t`` only, so TS2Vec's extra
right context of the second view would change nothing on the overlap. Here view 1 is
``[e, r)`` and view 2 ``[l, r)`` with ``e <= l``: the overlap ``[l, r)`` is view 2 whole and the
last ``O = r - l`` steps of view 1, and the two views differ by how much past they see (and by
their augmentations: jitter, per-feature scaling, timestamp masking). Crops are cut from the
input window only, so the objective never reads a bar after the window's last one.

Crop lengths are shared by the batch (one backbone call per view) and offsets drawn per window;
every draw comes from the torch ``generator`` passed in (the global RNG when None), so seeded runs
reproduce, and nothing loops over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from plusultra_core.training.config import ContrastiveConfig


@dataclass(frozen=True)
class CropPlan:
    """Two crops per window: view 1 ``[start1, start1 + len1)``, view 2 ``[start1 + len1 - overlap,
    start1 + len1)``; they share their last ``overlap`` steps."""

    start1: torch.Tensor   # [B] first step of view 1 in the window
    len1: int              # steps of view 1
    overlap: int           # steps of view 2 = steps both views cover

    @property
    def start2(self) -> torch.Tensor:
        return self.start1 + self.len1 - self.overlap                               # [B]


def _randint(low: int, high: int, generator: torch.Generator | None, device=None, size=(1,)) -> torch.Tensor:
    """``size`` integers uniform on ``[low, high]`` (inclusive)."""
    return torch.randint(low, high + 1, size, generator=generator, device=device)


def sample_crops(batch: int, steps: int, min_overlap: int, *, generator: torch.Generator | None = None,
                 device=None) -> CropPlan:
    """TS2Vec's crop sampling with the right extension dropped (causal views).

    Overlap length ``O ~ U[min_overlap, T]``, its start ``l ~ U[0, T - O]``, view 1's extra past
    ``l - e`` with ``e ~ U[0, l]``; then every window shifts the pair by its own offset, uniform
    over the shifts that keep both views inside the window.
    """
    if steps < min_overlap:
        raise ValueError(f"windows of {steps} steps are shorter than contrastive.min_overlap={min_overlap}")
    overlap = int(_randint(min_overlap, steps, generator))
    left = int(_randint(0, steps - overlap, generator))
    extra = left - int(_randint(0, left, generator))                                # l - e, steps of extra past
    len1 = extra + overlap
    # the pair sits at [left - extra, left + overlap); per-window shifts keep it in [0, T)
    offset = _randint(-(left - extra), steps - (left + overlap), generator, device, (batch,))   # [B]
    return CropPlan(start1=offset + left - extra, len1=len1, overlap=overlap)


def take_crops(x: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """``x[b, start[b] : start[b] + length]`` for every window: ``[B, T, F] -> [B, L, F]``."""
    idx = start.view(-1, 1) + torch.arange(length, device=x.device).view(1, -1)       # [B, L]
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))               # [B, L, F]


def augment(x: torch.Tensor, cfg: ContrastiveConfig, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Jitter, per-window per-feature scaling and timestamp masking of ``x [B, L, F]``.

    The inputs are z-scored per window, so 0 -- what a masked step becomes -- is the window's mean.
    """
    b, steps, f = x.shape
    kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
    out = x
    if cfg.scale_std > 0:
        out = out * (1.0 + cfg.scale_std * torch.randn(b, 1, f, **kw))              # [B, 1, F] over L
    if cfg.jitter_std > 0:
        out = out + cfg.jitter_std * torch.randn(b, steps, f, **kw)                 # [B, L, F]
    if cfg.mask_ratio > 0:
        keep = torch.rand(b, steps, 1, **kw) >= cfg.mask_ratio                      # [B, L, 1]
        out = out * keep
    return out


def instance_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """InfoNCE across windows at each step: ``z1, z2 [B, O, D]``; 0 for a single window."""
    b = z1.shape[0]
    if b == 1:
        return z1.new_zeros(())
    z = torch.cat([z1, z2], dim=0).transpose(0, 1)                                  # [O, 2B, D]
    return _paired_nce(z @ z.transpose(1, 2), b)                                     # sim [O, 2B, 2B]


def temporal_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """InfoNCE across the steps of each window: ``z1, z2 [B, O, D]``; 0 for a single step."""
    steps = z1.shape[1]
    if steps == 1:
        return z1.new_zeros(())
    z = torch.cat([z1, z2], dim=1)                                                  # [B, 2O, D]
    return _paired_nce(z @ z.transpose(1, 2), steps)                                 # sim [B, 2O, 2O]


def _paired_nce(sim: torch.Tensor, n: int) -> torch.Tensor:
    """Mean InfoNCE of ``sim [..., 2n, 2n]`` whose positive of row i is ``i + n`` (and of ``i + n``
    is ``i``); a row's own similarity is excluded from its softmax, as in TS2Vec."""
    eye = torch.eye(2 * n, dtype=torch.bool, device=sim.device)
    logp = F.log_softmax(sim.masked_fill(eye, float("-inf")), dim=-1)              # [..., 2n, 2n]
    i = torch.arange(n, device=sim.device)
    return -(logp[..., i, i + n].mean() + logp[..., i + n, i].mean()) / 2


def hierarchical_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, *, alpha: float = 0.5,
                                  temporal_unit: int = 0) -> torch.Tensor:
    """TS2Vec's loss of two views ``z1, z2 [B, O, D]`` of the same steps, averaged over levels.

    Each level adds ``alpha`` x instance + ``(1 - alpha)`` x temporal contrast (the temporal term
    from level ``temporal_unit`` on), then max-pools time by 2 (an odd last step is dropped, as
    ``max_pool1d`` does); the last, one-step level has the instance term only.
    """
    loss = z1.new_zeros(())
    depth = 0
    while z1.shape[1] > 1:  # log2(O) levels: a loop over scales, not over samples
        if alpha > 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        if depth >= temporal_unit and alpha < 1:
            loss = loss + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        depth += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)        # [B, O/2, D]
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if alpha > 0:
        loss = loss + alpha * instance_contrastive_loss(z1, z2)                      # [B, 1, D]
    depth += 1
    return loss / depth


def contrastive_loss(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, cfg: ContrastiveConfig, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The objective for one batch of windows ``x [B, T, F]``; ``encode`` maps ``[B, L, F]`` to
    per-step embeddings ``[B, L, D]`` (a causal backbone's ``steps``)."""
    plan = sample_crops(x.shape[0], x.shape[1], cfg.min_overlap, generator=generator, device=x.device)
    view1 = augment(take_crops(x, plan.start1, plan.len1), cfg, generator=generator)   # [B, L1, F]
    view2 = augment(take_crops(x, plan.start2, plan.overlap), cfg, generator=generator)  # [B, O, F]
    z1 = encode(view1)[:, -plan.overlap:]                                            # [B, O, D]
    z2 = encode(view2)                                                                # [B, O, D]
    return hierarchical_contrastive_loss(z1.float(), z2.float(), alpha=cfg.alpha,
                                         temporal_unit=cfg.temporal_unit)
