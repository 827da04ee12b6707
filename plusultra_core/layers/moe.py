"""Mixture-of-experts feed-forward layer with sparse top-k routing and load balancing.

A router scores every token against ``E`` expert FFNs; with ``routing="sparse"`` each token is
sent to its ``top_k`` experts only (Shazeer et al., 2017, arXiv:1701.06538; GShard, Lepikhin et
al., 2020, arXiv:2006.16668; Switch Transformer, Fedus et al., 2021, arXiv:2101.03961). Tokens are
*sorted by expert* and each expert runs one matmul on its own contiguous slice, so expert compute
is ``tokens * top_k`` FFN evaluations whatever ``E`` is: capacity grows with ``E``, cost does not.
``routing="dense"`` evaluates every expert on every token and mixes them with the full softmax
(a soft MoE baseline; cost grows with ``E``).

Auxiliary loss (returned with the output, scalar):
- load balancing (Switch/GShard): ``E * sum_i f_i * P_i`` with ``f_i`` the fraction of the
  ``tokens * top_k`` assignments that went to expert ``i`` and ``P_i`` the mean router
  probability of expert ``i``; it equals 1 for perfectly uniform routing and grows as routing
  collapses onto few experts (sparse routing only: dense routing has no imbalance to fix);
- router z-loss (ST-MoE, Zoph et al., 2022, arXiv:2202.08906), ``mean(logsumexp(logits)^2)``,
  weighted by ``z_loss_weight`` (0 disables it): keeps router logits small and bf16-safe.

Dimension legend: ``N`` tokens (all leading dims flattened), ``D`` width, ``E`` experts,
``K`` top_k, ``Hd`` expert hidden width (``ff_mult * D``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from plusultra_core.layers.options import check_routing  # torch-free, shared with the configs

class MixtureOfExperts(nn.Module):
    """``x [..., D] -> (y [..., D], aux_loss scalar)``.

    After each forward, for logging: ``last_aux_loss`` (detached scalar), ``last_load`` (``[E]``
    fraction of assignments per expert; for dense routing the mean router probability),
    ``last_rows_processed`` (token rows pushed through expert FFNs) and ``last_dropped``
    (assignments dropped by the capacity limit).
    """

    def __init__(self, d_model: int, num_experts: int = 8, top_k: int = 2, ff_mult: float = 4,
                 router_dropout: float = 0.0, dropout: float = 0.0, routing: str = "sparse",
                 capacity_factor: float | None = None, z_loss_weight: float = 0.0):
        super().__init__()
        check_routing(routing, num_experts, top_k, capacity_factor)
        D, E = d_model, num_experts
        Hd = int(ff_mult * D)
        self.num_experts, self.top_k, self.routing = E, top_k, routing
        self.capacity_factor, self.z_loss_weight = capacity_factor, z_loss_weight
        self.router = nn.Linear(D, E, bias=False)
        self.router_dropout = nn.Dropout(router_dropout)
        # experts as stacked weights [E, in, out]: one parameter per role, sliced per expert
        self.w1 = nn.Parameter(torch.empty(E, D, Hd))
        self.b1 = nn.Parameter(torch.zeros(E, Hd))
        self.w2 = nn.Parameter(torch.empty(E, Hd, D))
        self.b2 = nn.Parameter(torch.zeros(E, D))
        for w, fan_in in ((self.w1, D), (self.w2, Hd)):
            nn.init.uniform_(w, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))   # nn.Linear's init
        self.dropout = nn.Dropout(dropout)
        self.last_aux_loss = torch.zeros(())
        self.last_load = torch.zeros(E)
        self.last_rows_processed = 0
        self.last_dropped = 0

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``e``'s FFN on ``x [n, D] -> [n, D]``."""
        h = self.dropout(F.gelu(x @ self.w1[e] + self.b1[e]))   # [n, Hd]
        return h @ self.w2[e] + self.b2[e]                       # [n, D]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: [..., D]`` -> ``(y [..., D], aux_loss)``."""
        shape = x.shape
        xf = x.reshape(-1, shape[-1])                                  # [N, D]
        logits = self.router(self.router_dropout(xf)).float()          # [N, E] fp32 softmax
        probs = logits.softmax(dim=-1)                                 # [N, E]
        if self.routing == "dense":
            y, aux = self._dense(xf, probs), logits.new_zeros(())
        else:
            y, aux = self._sparse(xf, probs)
        if self.z_loss_weight:
            aux = aux + self.z_loss_weight * torch.logsumexp(logits, dim=-1).square().mean()
        self.last_aux_loss = aux.detach()
        return self.dropout(y).reshape(shape), aux

    def _dense(self, xf: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        # every expert on every token: [N, D] x [E, D, Hd] -> [E, N, Hd] -> [E, N, D]
        h = self.dropout(F.gelu(torch.einsum("nd,edh->enh", xf, self.w1) + self.b1[:, None]))
        out = torch.einsum("enh,ehd->end", h, self.w2) + self.b2[:, None]
        self.last_load = probs.detach().mean(0)
        self.last_rows_processed = xf.shape[0] * self.num_experts
        self.last_dropped = 0
        return torch.einsum("ne,end->nd", probs.to(out.dtype), out)    # [N, D]

    def _sparse(self, xf: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        N, E, K = xf.shape[0], self.num_experts, self.top_k
        gate, expert_idx = probs.topk(K, dim=-1)                       # [N, K] each
        gate = gate / gate.sum(-1, keepdim=True)                       # renormalise over the K chosen
        flat_expert = expert_idx.reshape(-1)                           # [N*K] assignment -> expert
        counts = torch.bincount(flat_expert, minlength=E)              # [E]
        # load balancing: f_i over all N*K assignments, P_i mean router prob (differentiable part)
        frac = counts.float() / (N * K)
        aux = E * (frac * probs.mean(0)).sum()
        # group assignments by expert: a stable sort keeps token order inside each expert's slice
        order = torch.argsort(flat_expert, stable=True)                # [N*K]
        token_of = order // K                                          # source token of each slot
        gate_of = gate.reshape(-1)[order]                              # [N*K]
        starts = torch.cumsum(counts, 0) - counts                      # [E] first slot per expert
        sizes = counts.tolist()                                        # one host sync per layer
        if self.capacity_factor is not None:
            capacity = max(1, math.ceil(self.capacity_factor * N * K / E))
            # keep the first `capacity` tokens (in batch order) per expert; overflow is dropped
            # and reaches the output only through the block's residual path
            pos = torch.arange(N * K, device=xf.device) - starts[flat_expert[order]]
            keep = pos < capacity
            token_of, gate_of = token_of[keep], gate_of[keep]
            kept = [min(s, capacity) for s in sizes]
            self.last_dropped = sum(sizes) - sum(kept)
            sizes = kept
        else:
            self.last_dropped = 0
        x_sorted = xf.index_select(0, token_of)                        # [M, D], M = sum(sizes)
        outs, offset = [], 0
        for e, n in enumerate(sizes):          # loop over experts (E of them), not over tokens
            if n:
                outs.append(self.expert(e, x_sorted[offset:offset + n]))
            offset += n
        self.last_rows_processed = offset
        y = torch.zeros_like(xf)
        if outs:
            weighted = torch.cat(outs) * gate_of.unsqueeze(-1).to(xf.dtype)   # [M, D]
            y = y.index_add(0, token_of, weighted.to(y.dtype))                  # scatter back
        self.last_load = frac.detach()
        return y, aux
