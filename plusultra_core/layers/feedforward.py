"""Position-wise feed-forward blocks (the transformer "MLP"), plain and pre-norm residual.

Dimension legend: ``B`` batch, ``T`` time (or tokens), ``D`` width.
"""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Module):
    """``[..., D] -> [..., D]``: Linear(D, ff_mult*D) -> GELU -> Linear(ff_mult*D, D)."""

    def __init__(self, d_model: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        hidden = int(ff_mult * d_model)
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., D]`` -> ``[..., D]``."""
        return self.net(x)


class ResidualFeedForward(nn.Module):
    """Pre-norm residual FFN ``x + FFN(LayerNorm(x))``: the identity path keeps deep stacks trainable."""

    def __init__(self, d_model: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ff_mult, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., D]`` -> ``[..., D]``."""
        return x + self.ffn(self.norm(x))
