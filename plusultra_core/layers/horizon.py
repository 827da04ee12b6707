"""Learned future-query decoder: ``H`` query vectors cross-attend to a sequence -> ``[B, H, D]``.

For backbones without a native decoder. Each horizon step owns a learned query (what "the bar
k steps ahead" should ask of the history); the queries are anchored on the newest token so the
most recent state reaches every horizon step directly, then refined by pre-norm blocks of
cross-attention to the memory, self-attention among the queries (horizon steps can share what
they found) and a feed-forward. The horizon outputs may use the whole history: they describe
the future, so no causal mask applies to them.

Dimension legend: ``B`` batch, ``S`` memory length, ``D`` width, ``H`` horizon.
"""

from __future__ import annotations

import torch
from torch import nn

from plusultra_core.layers.attention import MultiHeadAttention
from plusultra_core.layers.feedforward import ResidualFeedForward


class _QueryBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float, ff_mult: int, attn_dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_m = nn.LayerNorm(d_model)
        self.cross = MultiHeadAttention(d_model, n_heads, attn_dropout)
        self.norm_s = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, attn_dropout)
        self.ffn = ResidualFeedForward(d_model, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q = q + self.drop(self.cross(self.norm_q(q), self.norm_m(memory)))   # [B, H, D]
        q = q + self.drop(self.self_attn(self.norm_s(q)))                     # [B, H, D]
        return self.ffn(q)


class HorizonDecoder(nn.Module):
    """``memory [B, S, D] -> [B, H, D]`` with ``horizon`` learned queries.

    ``dropout`` applies to residual branches; ``attn_dropout`` to attention weights (keep it 0 on
    CPU: any attention dropout makes SDPA fall back to its slower unfused path).
    """

    def __init__(self, d_model: int, n_heads: int, horizon: int, dropout: float = 0.0,
                 ff_mult: int = 4, n_layers: int = 1, *, attn_dropout: float = 0.0):
        super().__init__()
        if horizon < 1 or n_layers < 1:
            raise ValueError(f"horizon ({horizon}) and n_layers ({n_layers}) must be >= 1")
        self.queries = nn.Parameter(torch.randn(horizon, d_model) * 0.02)   # [H, D]
        self.anchor = nn.Linear(d_model, d_model)
        self.blocks = nn.ModuleList(_QueryBlock(d_model, n_heads, dropout, ff_mult, attn_dropout)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        """``memory: [B, S, D]`` -> ``[B, H, D]``."""
        q = self.queries + self.anchor(memory[:, -1:])       # [H, D] + [B, 1, D] -> [B, H, D]
        for block in self.blocks:
            q = block(q, memory)
        return self.norm(q)
