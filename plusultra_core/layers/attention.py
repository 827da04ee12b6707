"""Multi-head attention on top of ``torch.nn.functional.scaled_dot_product_attention``.

Dimension legend: ``B`` batch, ``T`` query length, ``S`` key/value length, ``D`` width,
``h`` heads, ``d`` = D / h head width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention; fused SDPA kernel picks flash/memory-efficient paths when available."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query: torch.Tensor, context: torch.Tensor | None = None, *,
                causal: bool = False, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``query: [B, T, D]``, ``context: [B, S, D]`` (defaults to ``query``) -> ``[B, T, D]``."""
        context = query if context is None else context
        B, T, D = query.shape
        S = context.shape[1]
        h = self.n_heads
        q = self.q_proj(query).view(B, T, h, D // h).transpose(1, 2)        # [B, h, T, d]
        k, v = self.kv_proj(context).view(B, S, 2, h, D // h).permute(2, 0, 3, 1, 4)  # [B, h, S, d] each
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=causal and attn_mask is None,
            dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, D))        # [B, T, D]
