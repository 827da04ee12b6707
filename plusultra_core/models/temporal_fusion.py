"""Temporal Fusion Transformer backbone (after Lim et al., 2021, arXiv:1912.09363).

The idea: most input features are noise most of the time, so the model first *selects*
variables — a variable selection network (VSN) embeds every scalar feature with its own gated
residual network (GRN) and mixes them with softmax weights computed per sample and per step
(kept in ``variable_weights`` after each forward, for interpretability). Gated residual
connections (GLU + add & norm) around every sub-layer let the network skip what it does not
need. A transformer encoder runs over the history; a decoder of ``H`` learned future queries
(one per horizon step) does self-attention among the queries, cross-attention to the encoded
history and a GRN, giving one embedding per horizon step.

Departures from the paper, and why: there are no static covariates and no known-future inputs
in a window of market features, so static enrichment/context vectors and the decoder-side VSN
are dropped; the LSTM seq2seq layer is replaced by learned positional embeddings (a recurrent
loop per step is slow on CPU and the attention encoder is causal anyway); standard multi-head
attention is used instead of the paper's shared-value "interpretable" attention, since the
VSN weights carry the interpretability here.

With ``causal=True`` the encoder attends only to the past, and everything else is per step, so
``steps[:, t]`` depends on ``x[:, :t+1]`` only (tested).

Dimension legend: ``B`` batch, ``T`` input steps, ``F`` features (input variables), ``E``
per-variable embedding width (``var_dim``), ``D`` model width (``d_model``), ``H`` horizon.
"""

from __future__ import annotations

import torch
from torch import nn

from plusultra_core.layers.attention import MultiHeadAttention
from plusultra_core.layers.gating import GLU, GatedResidualNetwork, VariableSelectionNetwork
from plusultra_core.models.base import Backbone, BackboneOutput, check_input
from plusultra_core.models.configs import TemporalFusionConfig  # the config lives torch-free (re-exported)


class GatedAddNorm(nn.Module):
    """TFT's gate + skip + norm: ``LayerNorm(residual + GLU(x))`` over ``[..., D]``."""

    def __init__(self, cfg: TemporalFusionConfig):
        super().__init__()
        self.gate = GLU(cfg.d_model, cfg.d_model, cfg.dropout)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``x, residual: [..., D]`` -> ``[..., D]``."""
        return self.norm(residual + self.gate(x))


class EncoderLayer(nn.Module):
    """Self-attention over the history (causal if configured) + position-wise GRN: ``[B, T, D]``."""

    def __init__(self, cfg: TemporalFusionConfig):
        super().__init__()
        self.causal = cfg.causal
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.attn_dropout)
        self.attn_gate = GatedAddNorm(cfg)
        self.grn = GatedResidualNetwork(cfg.d_model, cfg.ff_mult * cfg.d_model, cfg.d_model, cfg.dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: [B, T, D]`` -> ``[B, T, D]``."""
        h = self.attn_gate(self.attn(h, causal=self.causal), h)
        return self.grn(h)


class DecoderLayer(nn.Module):
    """Future queries: self-attention among them, cross-attention to history, GRN: ``[B, H, D]``."""

    def __init__(self, cfg: TemporalFusionConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.attn_dropout)
        self.self_gate = GatedAddNorm(cfg)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.attn_dropout)
        self.cross_gate = GatedAddNorm(cfg)
        self.grn = GatedResidualNetwork(cfg.d_model, cfg.ff_mult * cfg.d_model, cfg.d_model, cfg.dropout)

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``q: [B, H, D]``, ``memory: [B, T, D]`` -> ``[B, H, D]``."""
        # all queries describe the future, so they may see each other and the whole history
        q = self.self_gate(self.self_attn(q), q)
        q = self.cross_gate(self.cross_attn(q, memory), q)
        return self.grn(q)


class TemporalFusionBackbone(Backbone):
    """``x: [B, T, F] -> BackboneOutput(steps [B, T, D], horizon [B, H, D], aux_loss 0)``.

    After each forward, ``variable_weights`` holds the VSN weights ``[B, T, F]`` (detached;
    each row sums to 1): how much each input feature contributed at each step.
    """

    def __init__(self, cfg: TemporalFusionConfig, n_features: int, horizon: int):
        super().__init__(cfg, n_features, horizon)
        D = cfg.d_model
        self.vsn = VariableSelectionNetwork(n_features, D, cfg.var_dim, cfg.dropout)
        # learned positions indexed from the *end* (position -1 = newest bar) so a curriculum
        # over context length does not change what a position means
        self.pos = nn.Parameter(torch.randn(cfg.max_len, D) * 0.02)           # [T_max, D]
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.queries = nn.Parameter(torch.randn(horizon, D) * 0.02)           # [H, D]
        self.anchor = nn.Linear(D, D)
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.variable_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """``x: [B, T, F]`` float32 with ``T <= max_len`` (``T`` may change between calls)."""
        check_input(x, self.n_features, self.cfg.max_len, type(self).__name__)
        h, weights = self.vsn(x)                          # [B, T, D], [B, T, F]
        self.variable_weights = weights.detach()
        h = h + self.pos[-x.shape[1]:]                    # [B, T, D]
        for layer in self.encoder:
            h = layer(h)                                  # [B, T, D]
        # each horizon query starts from its own learned vector plus the newest encoded state
        q = self.queries + self.anchor(h[:, -1:])         # [H, D] + [B, 1, D] -> [B, H, D]
        for layer in self.decoder:
            q = layer(q, h)                               # [B, H, D]
        return BackboneOutput(steps=h, horizon=q, aux_loss=x.new_zeros(()))

