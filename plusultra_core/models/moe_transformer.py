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

from dataclasses import dataclass

import torch
from torch import nn

from plusultra_core.layers.moe import MixtureOfExperts, check_routing
from plusultra_core.models.temporal_hybrid import TemporalBackboneConfig, TemporalBlock, TemporalHybridBackbone


@dataclass
class MoETransformerConfig:
    """Knobs of `MoETransformerBackbone` (field by field in ``configs/models/moe_transformer.yaml``)."""

    d_model: int = 64                       # width D
    n_heads: int = 4                        # attention heads (divides d_model)
    n_layers: int = 3                       # blocks
    dilations: tuple[int, ...] = (1, 2, 4)  # block i convolves with dilations[i % len]
    kernel_size: int = 3                    # dilated conv kernel (in tokens)
    num_experts: int = 8                    # E expert FFNs per block
    top_k: int = 2                          # experts per token (sparse routing)
    router_dropout: float = 0.0             # dropout on the router's input
    ff_mult: int = 2                        # expert hidden width = ff_mult * d_model
    routing: str = "sparse"                 # "sparse" top-k or "dense" softmax over all experts
    capacity_factor: float | None = None    # cap tokens per expert at cf * N*top_k/E (None: no drops)
    aux_loss_weight: float = 0.01           # weight of the load-balancing loss in aux_loss
    z_loss_weight: float = 0.0              # router z-loss weight (0 = off)
    dropout: float = 0.1
    max_len: int = 512                      # longest context T accepted
    causal: bool = True                     # steps[t] uses x[<= t] only
    patch_len: int = 8                      # steps per patch
    patch_stride: int = 4                   # steps between patch starts (<= patch_len)
    token_mode: str = "patch"               # "patch" or "step" (one token per bar)
    decoder_layers: int = 1                 # blocks of the learned future-query decoder

    def __post_init__(self):
        self.dilations = tuple(self.dilations)
        check_routing(self.routing, self.num_experts, self.top_k, self.capacity_factor)
        if not 0.0 <= self.router_dropout < 1.0:
            raise ValueError(f"router_dropout must be in [0, 1), got {self.router_dropout}")
        if self.aux_loss_weight < 0 or self.z_loss_weight < 0:
            raise ValueError("aux_loss_weight and z_loss_weight must be >= 0")
        self.temporal()          # the shared fields are validated by the temporal config

    def temporal(self) -> TemporalBackboneConfig:
        """The `TemporalBackboneConfig` the reused attention + conv part is built from."""
        return TemporalBackboneConfig(
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
            dilations=self.dilations, kernel_size=self.kernel_size, ff_mult=self.ff_mult,
            dropout=self.dropout, patch_len=self.patch_len, patch_stride=self.patch_stride,
            token_mode=self.token_mode, max_len=self.max_len, causal=self.causal,
            decoder_layers=self.decoder_layers)


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
