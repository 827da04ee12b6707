"""Learnable pooling of a fine sequence into a coarse one, and the mask that keeps it causal.

Groups of ``factor`` consecutive steps become one coarse token, a softmax-weighted average of
the group (weights from the content of each step plus a learned bias per position inside the
group; after the attention-pooling of Set Transformer / Perceiver, applied per local window).
Groups are aligned to the *end* of the sequence (the front is padded when ``factor`` does not
divide ``T``), so the newest step closes a group and the newest coarse token is usable at once.

`coarse_causal_mask` lets fine step ``t`` see only groups that *end* at or before ``t``: a coarse
token mixes every step of its group, so seeing a group that ends later would leak the future.

Dimension legend: ``B`` batch, ``T`` fine steps, ``D`` width, ``f`` factor, ``G = ceil(T/f)``
coarse groups.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def group_ends(T: int, factor: int, device: torch.device | None = None) -> torch.Tensor:
    """``[G]`` index of the last fine step of each coarse group (end-aligned, ascending)."""
    G = math.ceil(T / factor)
    return T - 1 - factor * torch.arange(G - 1, -1, -1, device=device)


def coarse_causal_mask(T: int, factor: int, device: torch.device | None = None,
                       null_token: bool = True) -> torch.Tensor:
    """Boolean ``[T, G (+1)]`` mask, True = fine step may attend the coarse group.

    With ``null_token`` a first, always-visible column is added for a learned "nothing yet"
    token, so early steps that precede every group end still have something to attend (an
    all-False row would make softmax attention NaN).
    """
    t = torch.arange(T, device=device).unsqueeze(1)                 # [T, 1]
    mask = group_ends(T, factor, device).unsqueeze(0) <= t          # [T, G]
    if null_token:
        mask = torch.cat([torch.ones(T, 1, dtype=torch.bool, device=device), mask], dim=1)
    return mask


class LearnablePooling(nn.Module):
    """``[B, T, D] -> [B, ceil(T/factor), D]``: learned softmax weights within each group."""

    def __init__(self, d_model: int, factor: int):
        super().__init__()
        if factor < 1:
            raise ValueError(f"coarse factor must be >= 1, got {factor}")
        self.factor = factor
        self.score = nn.Linear(d_model, 1)                      # content score per step
        self.pos_bias = nn.Parameter(torch.zeros(factor))       # where in the group matters
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, D]`` -> ``[B, G, D]``; group ``g`` uses steps ``(end_g - f, end_g]`` only."""
        B, T, D = x.shape
        f = self.factor
        G = math.ceil(T / f)
        pad = G * f - T
        scores = self.score(x).squeeze(-1)                                  # [B, T]
        if pad:
            x = torch.cat([x.new_zeros(B, pad, D), x], dim=1)               # [B, G*f, D]
            # padded slots get -inf so they take no weight (each group has >= 1 real step)
            scores = torch.cat([scores.new_full((B, pad), float("-inf")), scores], dim=1)
        w = (scores.view(B, G, f) + self.pos_bias).softmax(dim=-1)         # [B, G, f]
        pooled = torch.einsum("bgf,bgfd->bgd", w, x.view(B, G, f, D))       # [B, G, D]
        return self.proj(pooled)
