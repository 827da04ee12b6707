"""Gating blocks of the Temporal Fusion Transformer (Lim et al., 2021, arXiv:1912.09363).

- `GLU`: gated linear unit ``a * sigmoid(b)``; lets a block switch itself off (near-identity).
- `GatedResidualNetwork` (GRN): ``LayerNorm(skip(a) + GLU(W1 ELU(W2 a + W3 c)))`` with an optional
  context ``c``; with ``n_groups`` every group (e.g. every input variable) gets its own weights,
  computed in one batched matmul instead of a Python loop over variables.
- `VariableSelectionNetwork` (VSN): embeds each scalar input variable, transforms it with its own
  GRN, and mixes the variables with softmax weights computed from all of them. The weights are
  per sample and per time step, and are kept (``last_weights``) for interpretability.

Dimension legend: ``B`` batch, ``T`` time, ``F`` input variables, ``E`` per-variable width,
``D`` model width, ``G`` groups.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupedLinear(nn.Module):
    """``G`` independent linear maps applied at once: ``[..., G, d_in] -> [..., G, d_out]``."""

    def __init__(self, n_groups: int, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)                  # same init scale as nn.Linear
        self.weight = nn.Parameter(torch.empty(n_groups, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_groups, d_out).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., G, d_in]`` -> ``[..., G, d_out]``."""
        y = torch.einsum("...gi,gio->...go", x, self.weight)
        return y + self.bias if self.bias is not None else y


def _linear(d_in: int, d_out: int, n_groups: int | None) -> nn.Module:
    return nn.Linear(d_in, d_out) if n_groups is None else GroupedLinear(n_groups, d_in, d_out)


class GLU(nn.Module):
    """Gated linear unit ``[..., d_in] -> [..., d_out]`` (dropout on the input, as in TFT)."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0, n_groups: int | None = None):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = _linear(d_in, 2 * d_out, n_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., d_in]`` (or ``[..., G, d_in]`` when grouped) -> ``[..., d_out]``."""
        a, b = self.proj(self.dropout(x)).chunk(2, dim=-1)
        return a * torch.sigmoid(b)


class GatedResidualNetwork(nn.Module):
    """GRN ``[..., d_in] -> [..., d_out]`` with optional context ``[..., d_context]``.

    With ``n_groups`` the input is ``[..., G, d_in]`` and each group has its own weights; the
    context (if any) is shared by all groups.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int | None = None, dropout: float = 0.0, *,
                 d_context: int | None = None, n_groups: int | None = None):
        super().__init__()
        d_out = d_in if d_out is None else d_out
        self.skip = _linear(d_in, d_out, n_groups) if d_in != d_out else nn.Identity()
        self.fc2 = _linear(d_in, d_hidden, n_groups)
        self.context = nn.Linear(d_context, d_hidden, bias=False) if d_context else None
        self.fc1 = _linear(d_hidden, d_hidden, n_groups)
        self.gate = GLU(d_hidden, d_out, dropout, n_groups)
        self.norm = nn.LayerNorm(d_out)
        self.grouped = n_groups is not None

    def forward(self, a: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``a: [..., d_in]``, ``context: [..., d_context]`` -> ``[..., d_out]``."""
        h = self.fc2(a)                                # [..., (G,) d_hidden]
        if context is not None:
            if self.context is None:
                raise ValueError("this GatedResidualNetwork was built without d_context")
            c = self.context(context)                  # [..., d_hidden]
            h = h + (c.unsqueeze(-2) if self.grouped else c)
        h = self.fc1(F.elu(h))
        return self.norm(self.skip(a) + self.gate(h))


class VariableSelectionNetwork(nn.Module):
    """Soft selection of input variables: ``x: [B, T, F] -> ([B, T, D], weights [B, T, F])``.

    Each variable ``j`` is embedded ``e_j = x_j w_j + b_j`` (``[E]``), refined by its own GRN to
    ``xi_j``, and mapped to the model width by its own ``V_j: [E, D]``. The output is
    ``sum_j v_j V_j xi_j`` with ``v = softmax(GRN([e_1..e_F]))``. The per-variable
    projection is folded into one ``[B*T, F*E] @ [F*E, D]`` matmul, so the ``[B, T, F, D]``
    tensor a literal implementation would build never exists; ``E`` stays small (8-16) because
    ``[B, T, F, E]`` activations dominate memory.
    """

    def __init__(self, n_vars: int, d_model: int, var_dim: int = 8, dropout: float = 0.0, *,
                 d_context: int | None = None):
        super().__init__()
        self.n_vars, self.var_dim = n_vars, var_dim
        self.embed_weight = nn.Parameter(torch.randn(n_vars, var_dim) * 0.5)
        self.embed_bias = nn.Parameter(torch.zeros(n_vars, var_dim))
        self.var_grn = GatedResidualNetwork(var_dim, var_dim, var_dim, dropout, n_groups=n_vars)
        self.select_grn = GatedResidualNetwork(n_vars * var_dim, d_model, n_vars, dropout,
                                               d_context=d_context)
        bound = 1.0 / math.sqrt(var_dim)
        self.out_weight = nn.Parameter(torch.empty(n_vars * var_dim, d_model).uniform_(-bound, bound))
        self.out_bias = nn.Parameter(torch.zeros(d_model))
        self.last_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: [B, T, F]`` -> ``(mixed [B, T, D], weights [B, T, F])``; weights sum to 1 over F."""
        if x.shape[-1] != self.n_vars:
            raise ValueError(f"VariableSelectionNetwork expects {self.n_vars} variables, got {x.shape[-1]}")
        e = x.unsqueeze(-1) * self.embed_weight + self.embed_bias     # [B, T, F, E]
        flat = e.flatten(-2)                                          # [B, T, F*E]
        weights = torch.softmax(self.select_grn(flat, context), dim=-1)  # [B, T, F]
        xi = self.var_grn(e)                                          # [B, T, F, E]
        mixed = (weights.unsqueeze(-1) * xi).flatten(-2) @ self.out_weight + self.out_bias  # [B, T, D]
        self.last_weights = weights.detach()
        return mixed, weights
