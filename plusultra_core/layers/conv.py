"""Dilated temporal convolution over ``[B, T, D]`` sequences (WaveNet-style gated, causal by default).

A stack of these with a growing dilation schedule sees ``1 + (k-1) * sum(dilations)`` steps of
history at the cost of a few small kernels. Causal mode pads only on the left, so the output at
``t`` depends on inputs at ``<= t``; non-causal mode pads both sides ("same" length).

Dimension legend: ``B`` batch, ``T`` time (or tokens), ``D`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DilatedTemporalConv(nn.Module):
    """Gated dilated 1-D convolution ``[B, T, D] -> [B, T, D]`` (length preserved).

    ``out = W_o (a * sigmoid(g))`` with ``[a, g] = conv(x)``: the gate lets the layer switch a
    channel off, which trains more stably than a plain ReLU conv inside a residual stack.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1, *,
                 causal: bool = True, dropout: float = 0.0):
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f"kernel_size ({kernel_size}) and dilation ({dilation}) must be >= 1")
        self.causal = causal
        span = (kernel_size - 1) * dilation            # how many extra input steps one output sees
        # causal: all padding on the left; "same": split (left gets the extra one when odd)
        self.pad = (span, 0) if causal else (span - span // 2, span // 2)
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation)
        self.out = nn.Linear(channels, channels)
        self.dropout = nn.Dropout(dropout)
        self.receptive_field = span + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, D]`` -> ``[B, T, D]``."""
        h = F.pad(x.transpose(1, 2), self.pad)         # [B, D, T + span]
        a, g = self.conv(h).chunk(2, dim=1)            # [B, D, T] each
        h = (a * torch.sigmoid(g)).transpose(1, 2)     # [B, T, D]
        return self.dropout(self.out(h))
