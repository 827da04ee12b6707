"""Mixture-of-experts transformer backbone: the temporal hybrid block with a sparse MoE FFN.

The idea: market regimes (trending, mean-reverting, crisis) want different per-token
transformations. A mixture-of-experts FFN gives each token its own ``top_k`` of ``num_experts``
expert FFNs chosen by a learned router, so capacity grows with the number of experts while the
compute per token stays that of ``top_k`` FFNs (Shazeer et al., 2017, arXiv:1701.06538; Switch
Transformer, Fedus et al., 2021, arXiv:2101.03961; Mixtral's top-2 routing, Jiang et al., 2024).
Sequence mixing is reused unchanged from `temporal_hybrid` by composition: each block is a
`TemporalBlock` (causal attention + gated dilated convolution) whose dense FFN is replaced by a
pre-norm residual `MixtureOfExperts`. Tokens are PatchTST patches (or one per bar), horizon
embeddings come from learned future queries (`HorizonDecoder`).

``aux_loss`` = ``aux_loss_weight * sum over layers`` of the load-balancing loss (``E sum_i f_i
P_i``, 1 when routing is uniform) plus the optional router z-loss; the training module adds it
to the loss and logs it. Per-expert load of the last batch is in ``expert_load()``.

Dimension legend: ``B`` batch, ``T`` input steps, ``F`` features, ``D`` model width, ``N``
tokens, ``E`` experts, ``H`` horizon.
"""

from __future__ import annotations

import torch
from torch import nn

from plusultra_core.layers.moe import MixtureOfExperts
from plusultra_core.models.configs import MoETransformerConfig  # the config lives torch-free (re-exported)
from plusultra_core.models.temporal_hybrid import TemporalBlock, TemporalHybridBackbone


class MoEBlock(nn.Module):
    """`TemporalBlock` (attention + dilated conv, its dense FFN removed), then ``x + MoE(LN x)``."""

    def __init__(self, cfg: MoETransformerConfig, dilation: int):
        super().__init__()
        self.mixer = TemporalBlock(cfg.temporal(), dilation)
        self.mixer.ffn = nn.Identity()        # the MoE below takes the FFN's place
        self.norm = nn.LayerNorm(cfg.d_model)
        self.moe = MixtureOfExperts(cfg.d_model, cfg.num_experts, cfg.top_k, cfg.ff_mult,
                                    cfg.router_dropout, cfg.dropout, cfg.routing,
                                    cfg.capacity_factor, cfg.z_loss_weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: [B, N, D]`` -> ``(x [B, N, D], aux_loss scalar)``."""
        x = self.mixer(x)                      # attention + conv along N
        y, aux = self.moe(self.norm(x))        # per token, top_k experts
        return x + y, aux


class MoETransformerBackbone(TemporalHybridBackbone):
    """``x: [B, T, F] -> BackboneOutput(steps [B, T, D], horizon [B, H, D], aux_loss)``: the
    `TemporalHybridBackbone` skeleton (patch embedding, positions from the end, blocks, norms,
    horizon decoder; same parameter names) with `MoEBlock`s, whose load-balancing losses add up."""

    def make_block(self, cfg: MoETransformerConfig, dilation: int) -> nn.Module:
        return MoEBlock(cfg, dilation)

    def mix(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aux = tokens.new_zeros(())
        for block in self.blocks:
            tokens, block_aux = block(tokens)                     # [B, N, D]
            aux = aux + block_aux
        return tokens, self.cfg.aux_loss_weight * aux

    def expert_load(self) -> torch.Tensor:
        """``[n_layers, E]`` fraction of routed tokens per expert in the last forward (for logging)."""
        return torch.stack([block.moe.last_load for block in self.blocks])
