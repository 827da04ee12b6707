"""What every backbone returns, so heads and Lightning modules never care which one they got.

Dimension legend: ``B`` batch, ``T`` input time steps, ``F`` input features, ``D`` model width,
``H`` horizon steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
