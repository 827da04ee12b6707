"""Vectorised mask generation for masked time-series reconstruction.

Dimension legend: ``B`` batch, ``T`` time steps, ``F`` features.

Three corruptions, unioned into one boolean mask ``[B, T, F]`` (True = hidden from the model):
random single time steps (all features of that step), contiguous spans of time steps (forces the
model to interpolate across a gap rather than copy a neighbour), and whole features over the
window (forces it to infer one series from the others). Everything is drawn with torch from
``generator`` (the global RNG when None), so ``seed_everything`` makes it reproducible, and no
Python loop runs per sample or per span.
"""

from __future__ import annotations

import torch

from plusultra_core.training.config import MaskingConfig


def generate_mask(batch: int, steps: int, features: int, cfg: MaskingConfig, *,
                  device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask ``[B, T, F]`` per ``cfg.strategies``; every sample has at least one masked step."""
    kw = {"device": device, "generator": generator}
    time_mask = torch.zeros(batch, steps, dtype=torch.bool, device=device)          # [B, T]
    if "random" in cfg.strategies and cfg.mask_ratio > 0:
        time_mask |= torch.rand(batch, steps, **kw) < cfg.mask_ratio
    if "span" in cfg.strategies and cfg.span_ratio > 0:
        span = min(cfg.span_length, steps)
        n_spans = max(1, round(cfg.span_ratio * steps / span))
        starts = torch.randint(0, steps - span + 1, (batch, n_spans, 1), **kw)       # [B, S, 1]
        t = torch.arange(steps, device=device).view(1, 1, steps)                     # [1, 1, T]
        time_mask |= ((t >= starts) & (t < starts + span)).any(dim=1)                # [B, T]
    # guarantee a target in every sample: one random step when nothing else got masked
    empty = ~time_mask.any(dim=1)                                                     # [B]
    fallback = torch.randint(0, steps, (batch,), **kw)
    time_mask[empty, fallback[empty]] = True
    mask = time_mask.unsqueeze(-1).expand(batch, steps, features).clone()            # [B, T, F]
    if "feature" in cfg.strategies and cfg.feature_mask_ratio > 0 and features > 1:
        feat = torch.rand(batch, features, **kw) < cfg.feature_mask_ratio            # [B, F]
        # never hide every feature: there would be nothing left to infer from
        feat &= ~feat.all(dim=1, keepdim=True)
        mask |= feat.unsqueeze(1)                                                     # [B, 1, F] over T
    return mask
