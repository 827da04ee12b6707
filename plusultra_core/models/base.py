"""What every backbone returns, so heads and Lightning modules never care which one they got, and
what every backbone shares: its input contract (`check_input`) and its constructor (`Backbone`).

Dimension legend: ``B`` batch, ``T`` input time steps, ``F`` input features, ``D`` model width,
``H`` horizon steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from plusultra_core.errors import ConfigError


@dataclass
class BackboneOutput:
    """Representations a backbone produces from ``x: [B, T, F]``.

    steps:    [B, T, D] one embedding per *input* time step (patched backbones project each patch
              token back to its steps); masked-reconstruction pretraining decodes these.
    horizon:  [B, H, D] one embedding per future horizon step; the policy / regression / quantile
              heads decode these.
    aux_loss: scalar tensor added to the training loss (MoE load balancing; 0 elsewhere).
    """

    steps: torch.Tensor
    horizon: torch.Tensor
    aux_loss: torch.Tensor


def check_input(x: torch.Tensor, n_features: int, max_len: int, who: str) -> None:
    """Every backbone's input contract: ``[B, T, n_features]`` with ``1 <= T <= max_len``. Both
    faults are an input that does not fit the model's configuration: one `ConfigError`."""
    if x.dim() != 3 or x.shape[-1] != n_features:
        raise ConfigError(f"{who} expects x of shape [B, T, {n_features}] (the model's n_features), "
                          f"got {tuple(x.shape)}")
    if not 1 <= x.shape[1] <= max_len:
        raise ConfigError(f"{who}: context length T={x.shape[1]} is outside [1, max_len={max_len}]; "
                          f"raise max_len in the model config")


class Backbone(nn.Module):
    """What every backbone is built from: its config ``cfg``, the input width ``n_features`` and
    the number of ``horizon`` steps it embeds (kept as attributes; its own modules follow)."""

    def __init__(self, cfg, n_features: int, horizon: int):
        super().__init__()
        if n_features < 1 or horizon < 1:
            raise ValueError(f"n_features ({n_features}) and horizon ({horizon}) must be >= 1")
        self.cfg, self.n_features, self.horizon = cfg, n_features, horizon
