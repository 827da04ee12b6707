"""Patch embedding for time series (after PatchTST, Nie et al., 2023, arXiv:2211.14730).

A window ``[B, T, F]`` becomes a shorter token sequence so attention costs ``O((T/stride)^2)``
instead of ``O(T^2)``, and each token sees a local shape rather than a single noisy bar.

- ``token_mode="patch"``: patches of ``patch_len`` steps every ``patch_stride`` steps, each
  flattened and linearly embedded. The sequence is zero-padded at the *front* so that every step
  lies in some patch and the last patch always ends on the newest bar (whatever ``T`` is).
- ``token_mode="step"``: one token per step from a convolution over the last ``patch_len`` steps
  (a stride-1 "sliding patch"); no length change.

`to_steps` maps tokens back to one embedding per input step: each token is projected
``D -> patch_len * D`` and overlapping contributions are averaged (``fold``), then trimmed.
In causal mode a token is delivered to the ``patch_len`` steps *starting at its last bar*
(instead of the steps it covers), so step ``t`` only ever receives tokens built from bars
``<= t``; a per-step linear skip of the raw input gives every step its own bar too.

Dimension legend: ``B`` batch, ``T`` time, ``F`` features, ``D`` width, ``N`` tokens,
``P`` patch_len, ``S`` patch_stride.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from plusultra_core.layers.options import check_patching  # torch-free, shared with the configs

class PatchEmbedding(nn.Module):
    """``[B, T, F] -> tokens [B, N, D]`` and back to ``[B, T, D]`` with `to_steps`."""

    def __init__(self, n_features: int, d_model: int, patch_len: int, patch_stride: int,
                 token_mode: str = "patch", *, causal: bool = True):
        super().__init__()
        check_patching(token_mode, patch_len, patch_stride)
        self.n_features, self.d_model = n_features, d_model
        self.patch_len, self.patch_stride = patch_len, patch_stride
        self.token_mode, self.causal = token_mode, causal
        if token_mode == "patch":
            self.embed = nn.Linear(n_features * patch_len, d_model)
            self.unproject = nn.Linear(d_model, patch_len * d_model)
            self.step_skip = nn.Linear(n_features, d_model)
        else:
            span = patch_len - 1
            self.conv_pad = (span, 0) if causal else (span - span // 2, span // 2)
            self.embed = nn.Conv1d(n_features, d_model, patch_len)

    def plan(self, T: int) -> tuple[int, int]:
        """``(n_tokens, front_pad)`` for a window of ``T`` steps."""
        if self.token_mode == "step":
            return T, 0
        P, S = self.patch_len, self.patch_stride
        if self.causal:
            # patch ends at steps ..., T-1-S, T-1 reaching back to <= step 0, so every step has
            # a token ending at or before it
            n = math.ceil((T - 1) / S) + 1
        else:
            n = max(1, math.ceil((T - P) / S) + 1)
        return n, (n - 1) * S + P - T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, F]`` -> ``tokens [B, N, D]`` (``N = plan(T)[0]``)."""
        if self.token_mode == "step":
            h = F.pad(x.transpose(1, 2), self.conv_pad)               # [B, F, T + P - 1]
            return self.embed(h).transpose(1, 2)                      # [B, T, D]
        _, pad = self.plan(x.shape[1])
        x = F.pad(x, (0, 0, pad, 0))                                  # [B, pad + T, F]
        patches = x.unfold(1, self.patch_len, self.patch_stride)      # [B, N, F, P]
        return self.embed(patches.flatten(2))                         # [B, N, D]

    def to_steps(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``tokens [B, N, D]`` (from ``x: [B, T, F]``) -> one embedding per step ``[B, T, D]``."""
        if self.token_mode == "step":
            return tokens
        B, N, D = tokens.shape
        T = x.shape[1]
        P, S = self.patch_len, self.patch_stride
        n, pad = self.plan(T)
        if n != N:
            raise ValueError(f"got {N} tokens for T={T}, expected {n}")
        length = (N - 1) * S + P                                      # padded length
        blocks = self.unproject(tokens).view(B, N, P, D)              # [B, N, P, D]
        blocks = blocks.permute(0, 3, 2, 1).reshape(B, D * P, N)      # fold wants [B, D*P, N]
        summed = F.fold(blocks, (length, 1), (P, 1), stride=(S, 1))   # [B, D, length, 1]
        ones = torch.ones(1, P, N, dtype=tokens.dtype, device=tokens.device)
        count = F.fold(ones, (length, 1), (P, 1), stride=(S, 1))      # [1, 1, length, 1], >= 1
        avg = (summed / count).squeeze(-1).transpose(1, 2)            # [B, length, D]
        # fold position j holds what a token delivers to padded step j (+ P-1 when causal, since
        # tokens are delivered from their last bar on); real step t is padded step t + pad
        shift = pad - (P - 1) if self.causal else pad
        return avg[:, shift:shift + T] + self.step_skip(x)            # [B, T, D]
