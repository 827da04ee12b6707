"""`SeedEnsemble`: the mean decision of models that differ only in their training seed.

A cutoff trains one model per seed; what a researcher deploys after seeing the seed spread is
their ensemble. Averaging positions (and expected returns, action probabilities, quantiles) of
the members gives the ensemble's decision; it is what the evaluation scores as
``<architecture>/ensemble`` and what `inference_frames` serves, so both are the same strategy.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from plusultra_core.heads import HeadOutput


def _mean(values: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(v is None for v in values) else torch.stack(values).mean(dim=0)


class SeedEnsemble(nn.Module):
    """Wrap ``members`` (`SupervisedTradingModule`s with the same inputs and head kind)."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("SeedEnsemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.head = members[0].head   # quantile levels etc. are the same for every member

    def forward(self, x: torch.Tensor):
        """``x [B, T, F]`` -> ``(HeadOutput of member means [B, H, ...], None)``."""
        outs = [m(x)[0] for m in self.members]
        return HeadOutput(position=_mean([o.position for o in outs]),
                          expected_return=_mean([o.expected_return for o in outs]),
                          probs=_mean([o.probs for o in outs]),
                          quantiles=_mean([o.quantiles for o in outs])), None
