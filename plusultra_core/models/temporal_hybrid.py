"""Temporal hybrid backbone: patch tokens through blocks of attention + dilated convolution + FFN.

The idea: attention finds long-range, content-addressed structure (regimes, similar past
episodes), while a dilated causal convolution supplies cheap, translation-invariant local
pattern detectors (momentum bursts, reversals) that attention learns slowly. Cycling the
dilation across layers (``dilations[i % len]``) grows the convolutional receptive field
geometrically with depth. Inputs are patched first (PatchTST, Nie et al., 2023) so a token is a
local shape rather than a noisy bar and attention is ``(T / patch_stride)^2`` instead of
``T^2``; ``token_mode="step"`` keeps one token per bar (conv embedding) for short contexts.
Blocks are pre-norm (Xiong et al., 2020) with residuals; the conv branch follows WaveNet's
gated dilated convolution (van den Oord et al., 2016). Horizon embeddings come from learned
future queries cross-attending to the tokens (`HorizonDecoder`).

With ``causal=True`` a token only attends to / convolves over earlier tokens, and patch tokens
are delivered back to steps from their last bar on, so ``steps[:, t]`` depends on ``x[:, :t+1]``
only (tested).

Dimension legend: ``B`` batch, ``T`` input steps, ``F`` features, ``D`` model width
(``d_model``), ``N`` tokens (``T`` in step mode, about ``T / patch_stride`` in patch mode),
``H`` horizon.
"""

from __future__ import annotations

import torch
from torch import nn

from plusultra_core.layers.attention import MultiHeadAttention
from plusultra_core.layers.conv import DilatedTemporalConv
from plusultra_core.layers.feedforward import ResidualFeedForward
from plusultra_core.layers.horizon import HorizonDecoder
from plusultra_core.layers.patch import PatchEmbedding
from plusultra_core.models.base import Backbone, BackboneOutput, check_input
from plusultra_core.models.configs import TemporalBackboneConfig  # the config lives torch-free (re-exported)


class TemporalBlock(nn.Module):
    """Pre-norm ``x + Attn(LN x)``, ``x + DilatedConv(LN x)``, ``x + FFN(LN x)``: ``[B, N, D] -> [B, N, D]``."""

    def __init__(self, cfg: TemporalBackboneConfig, dilation: int):
        super().__init__()
        self.causal = cfg.causal
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.attn_dropout)
        self.norm_conv = nn.LayerNorm(cfg.d_model)
        self.conv = DilatedTemporalConv(cfg.d_model, cfg.kernel_size, dilation,
                                        causal=cfg.causal, dropout=cfg.dropout)
        self.ffn = ResidualFeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, N, D]`` -> ``[B, N, D]``."""
        x = x + self.drop(self.attn(self.norm_attn(x), causal=self.causal))  # global, content-based
        x = x + self.conv(self.norm_conv(x))                                  # local, dilated
        return self.ffn(x)                                                    # per token


class TemporalHybridBackbone(Backbone):
    """``x: [B, T, F] -> BackboneOutput(steps [B, T, D], horizon [B, H, D], aux_loss 0)``."""

    def __init__(self, cfg: TemporalBackboneConfig, n_features: int, horizon: int):
        super().__init__(cfg, n_features, horizon)
        D = cfg.d_model
        self.embed = PatchEmbedding(n_features, D, cfg.patch_len, cfg.patch_stride, cfg.token_mode,
                                    causal=cfg.causal)
        max_tokens = self.embed.plan(cfg.max_len)[0]
        # learned positions indexed from the *end*: token -1 is always "the newest", whatever T
        # is, so a curriculum over context length does not shift what a position means
        self.pos = nn.Parameter(torch.randn(max_tokens, D) * 0.02)            # [N_max, D]
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(self.make_block(cfg, cfg.dilations[i % len(cfg.dilations)])
                                    for i in range(cfg.n_layers))
        self.norm = nn.LayerNorm(D)
        # patch tokens mapped back to steps get their own norm (they mix token and raw-input paths)
        self.step_norm = nn.LayerNorm(D) if cfg.token_mode == "patch" else nn.Identity()
        self.decoder = HorizonDecoder(D, cfg.n_heads, horizon, cfg.dropout, cfg.ff_mult,
                                      cfg.decoder_layers, attn_dropout=getattr(cfg, "attn_dropout", 0.0))

    def make_block(self, cfg, dilation: int) -> nn.Module:
        """One sequence-mixing block (`MoETransformerBackbone` swaps in its MoE block: the rest of
        this skeleton, embedding to decoder, is shared rather than copied)."""
        return TemporalBlock(cfg, dilation)

    def mix(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens [B, N, D]`` through every block -> ``(tokens [B, N, D], aux_loss scalar)``."""
        for block in self.blocks:
            tokens = block(tokens)
        return tokens, tokens.new_zeros(())

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """``x: [B, T, F]`` float32 with ``T <= max_len`` (``T`` may change between calls)."""
        check_input(x, self.n_features, self.cfg.max_len, type(self).__name__)
        tokens = self.embed(x)                                    # [B, N, D]
        tokens = self.drop(tokens + self.pos[-tokens.shape[1]:])  # [B, N, D]
        tokens, aux = self.mix(tokens)                            # [B, N, D]
        tokens = self.norm(tokens)                                # [B, N, D]
        steps = self.step_norm(self.embed.to_steps(tokens, x))    # [B, T, D]
        horizon = self.decoder(tokens)                            # [B, H, D]
        return BackboneOutput(steps=steps, horizon=horizon, aux_loss=aux)

