"""Omni mixture backbone: state-space and dilated mixers on fine steps, cross-scale attention to a
learnably pooled coarse sequence.

The idea: markets carry structure at several time scales at once. Each bar is a fine token;
layers alternate a *selective diagonal state-space mixer* (S4D/Mamba, Gu et al. 2022
arXiv:2206.11893 and Gu & Dao 2023 arXiv:2312.00752: a linear recurrence with input-dependent
decay, i.e. a learned, content-aware exponential moving average with memory far beyond a
convolution's, computed by a parallel scan) and a *dilated causal convolution* (WaveNet, van den
Oord et al. 2016: cheap local pattern detectors). Every ``cross_every`` layers the fine sequence
is pooled into a coarse one (``coarse_factor`` steps per token, learned softmax weights within
each group) and every fine token cross-attends into it, so a bar can look up "what the last
months looked like" directly instead of through a long chain of recurrences (multi-scale
attention in the spirit of Pyraformer, Liu et al. 2022, and Crossformer, Zhang & Yan 2023).
Horizon embeddings come from learned future queries (`HorizonDecoder`).

Causality (``causal=True``, default): the SSM scans forward in time, the convolutions pad on the
left, and a fine step ``t`` may only attend coarse groups that *end at or before* ``t`` (plus a
learned null token), so ``steps[:, t]`` depends on ``x[:, :t+1]`` only (tested). ``causal=False``
lets convolutions and cross-attention see the whole window (masked-reconstruction pretraining).

Dimension legend: ``B`` batch, ``T`` input steps, ``F`` features, ``D`` model width, ``N`` SSM
state per channel, ``G = ceil(T / coarse_factor)`` coarse tokens, ``H`` horizon.
"""

from __future__ import annotations

import math
import torch
from torch import nn

from plusultra_core.layers.attention import MultiHeadAttention
from plusultra_core.layers.conv import DilatedTemporalConv
from plusultra_core.layers.feedforward import ResidualFeedForward
from plusultra_core.layers.horizon import HorizonDecoder
from plusultra_core.layers.pooling import LearnablePooling, coarse_causal_mask
from plusultra_core.layers.ssm import DiagonalSSM
from plusultra_core.models.base import Backbone, BackboneOutput, check_input
from plusultra_core.models.configs import OmniMixtureConfig  # the config lives torch-free (re-exported)


class CrossScaleAttention(nn.Module):
    """Fine tokens ``[B, T, D]`` attend into their own pooled coarse sequence ``[B, G, D]``."""

    def __init__(self, cfg: OmniMixtureConfig):
        super().__init__()
        D = cfg.d_model
        self.factor, self.causal = cfg.coarse_factor, cfg.causal
        self.norm_in = nn.LayerNorm(D)
        self.pool = LearnablePooling(D, cfg.coarse_factor)
        # coarse positions indexed from the end (the newest group is always -1), plus a learned
        # null token that every step may attend (early steps precede every group end)
        self.coarse_pos = nn.Parameter(torch.randn(math.ceil(cfg.max_len / cfg.coarse_factor), D) * 0.02)
        self.null = nn.Parameter(torch.zeros(1, 1, D))
        self.norm_kv = nn.LayerNorm(D)
        self.attn = MultiHeadAttention(D, cfg.n_heads, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, D]`` -> ``[B, T, D]`` (residual included)."""
        B, T, _ = x.shape
        h = self.norm_in(x)
        coarse = self.pool(h)                                        # [B, T, D] -> [B, G, D]
        coarse = coarse + self.coarse_pos[-coarse.shape[1]:]
        kv = torch.cat([self.null.expand(B, -1, -1), coarse], dim=1)  # [B, 1 + G, D]
        mask = coarse_causal_mask(T, self.factor, x.device) if self.causal else None  # [T, 1 + G]
        return x + self.drop(self.attn(h, self.norm_kv(kv), attn_mask=mask))


class OmniLayer(nn.Module):
    """Pre-norm ``x + Mixer(LN x)`` (SSM or dilated conv), optional cross-scale attention, FFN."""

    def __init__(self, cfg: OmniMixtureConfig, index: int):
        super().__init__()
        D = cfg.d_model
        self.norm = nn.LayerNorm(D)
        if index % 2 == 0:
            self.kind = "ssm"
            self.mixer = DiagonalSSM(D, cfg.ssm_state_dim, init=cfg.ssm_init,
                                     selective=cfg.ssm_selective, chunk=cfg.ssm_chunk,
                                     dropout=cfg.dropout)
        else:
            self.kind = "conv"
            dilation = cfg.dilations[(index // 2) % len(cfg.dilations)]
            self.mixer = DilatedTemporalConv(D, cfg.kernel_size, dilation, causal=cfg.causal,
                                             dropout=cfg.dropout)
        self.cross = CrossScaleAttention(cfg) if (index + 1) % cfg.cross_every == 0 else None
        self.ffn = ResidualFeedForward(D, cfg.ff_mult, cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, D]`` -> ``[B, T, D]``."""
        x = x + self.mixer(self.norm(x))          # sequence mixing along T
        if self.cross is not None:
            x = self.cross(x)                     # fine -> coarse lookup
        return self.ffn(x)                        # per step


class OmniMixtureBackbone(Backbone):
    """``x: [B, T, F] -> BackboneOutput(steps [B, T, D], horizon [B, H, D], aux_loss 0)``."""

    def __init__(self, cfg: OmniMixtureConfig, n_features: int, horizon: int):
        super().__init__(cfg, n_features, horizon)
        D = cfg.d_model
        self.embed = nn.Linear(n_features, D)
        # positions from the end: step -1 is always "the newest" whatever T is
        self.pos = nn.Parameter(torch.randn(cfg.max_len, D) * 0.02)   # [T_max, D]
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(OmniLayer(cfg, i) for i in range(cfg.n_layers))
        self.norm = nn.LayerNorm(D)
        self.decoder = HorizonDecoder(D, cfg.n_heads, horizon, cfg.dropout, cfg.ff_mult,
                                      cfg.decoder_layers)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """``x: [B, T, F]`` float32 with ``1 <= T <= max_len``."""
        check_input(x, self.n_features, self.cfg.max_len, type(self).__name__)
        T = x.shape[1]
        h = self.drop(self.embed(x) + self.pos[-T:])              # [B, T, F] -> [B, T, D]
        for layer in self.layers:
            h = layer(h)                                          # [B, T, D]
        steps = self.norm(h)                                      # [B, T, D]
        horizon = self.decoder(steps)                             # [B, H, D]
        return BackboneOutput(steps=steps, horizon=horizon, aux_loss=x.new_zeros(()))
