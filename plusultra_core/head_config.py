"""`HeadConfig`: which output head to build and its knobs (no torch: configs load, validate and
hash without importing it; `plusultra_core.heads` builds the modules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plusultra_core.errors import ConfigError


@dataclass
class HeadConfig:
    """Which head to build and its knobs.

    kind:                 "policy" | "regression" | "quantile".
    quantiles:            quantile levels (strictly increasing in (0, 1), must contain 0.5).
    hidden_mult:          hidden width = hidden_mult * D of the head's MLP; 0 = a single linear layer.
    dropout:              dropout inside the head MLP.
    position_temperature: initial temperature of the position mapping (policy: softmax
                          temperature; regression / quantile: divisor inside tanh). Lower = bolder.
    learn_temperature:    make the temperature a learnable parameter (kept positive via log).
    return_scale:         typical size of one-step returns; head outputs are in units of it.
                          Keep it equal to `LossConfig.return_scale`.
    ce_weight:            weight of the policy head's cross-entropy on sign(target) (0 = off).
    hold_band:            |target| <= hold_band is labelled "hold" for that cross-entropy.
    pinball_weight:       weight of the quantile head's pinball loss.
    """

    kind: Literal["policy", "regression", "quantile"] = "policy"
    quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    hidden_mult: int = 1
    dropout: float = 0.0
    position_temperature: float = 1.0
    learn_temperature: bool = True
    return_scale: float = 0.01
    ce_weight: float = 0.0
    hold_band: float = 0.0
    pinball_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("policy", "regression", "quantile"):
            raise ConfigError(f"HeadConfig.kind must be 'policy', 'regression' or 'quantile', got {self.kind!r}")
        self.quantiles = tuple(float(q) for q in self.quantiles)
        qs = self.quantiles
        if self.kind == "quantile":
            if len(qs) < 2 or any(not 0 < q < 1 for q in qs) or any(a >= b for a, b in zip(qs, qs[1:])):
                raise ConfigError("HeadConfig.quantiles must be >= 2 strictly increasing levels in (0, 1), "
                                  f"got {qs}")
            if 0.5 not in qs:
                raise ConfigError(f"HeadConfig.quantiles must contain the median 0.5, got {qs}")
        if not isinstance(self.hidden_mult, int) or self.hidden_mult < 0:
            raise ConfigError(f"HeadConfig.hidden_mult must be an integer >= 0, got {self.hidden_mult!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"HeadConfig.dropout must be in [0, 1), got {self.dropout}")
        for name in ("position_temperature", "return_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"HeadConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("ce_weight", "hold_band", "pinball_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"HeadConfig.{name} must be >= 0, got {getattr(self, name)}")
