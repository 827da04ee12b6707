"""`LossConfig`: weights and knobs of `plusultra_core.losses.CompositeTradingLoss` (no torch:
configs load, validate and hash without importing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from plusultra_core.errors import ConfigError

# Defaults of the utility term. The flat position stops being a (local) optimum only when the
# utility's pull at zero, utility_weight * edge / return_scale, beats the drawdown term's push,
# drawdown_weight * (max drawdown of a block per unit size, ~3-4 daily sigmas for 16-day blocks)
# plus costs. With drawdown_weight 0.1 that is ~0.35; a weight of 5 clears it for edges above
# ~0.07 daily sigma (weight 1 needed 0.35 sigma, so even a strong planted AR(1) signal stayed at
# |position| ~ 0.05). A risk aversion of 10 sizes a 0.05-sigma daily edge at sigma = 1% to
# c* = 0.5 and a 0.1-sigma edge to full size: real signals use the [-1, 1] range.
UTILITY_WEIGHT = 5.0
RISK_AVERSION = 10.0


@dataclass
class LossConfig:
    """Weights and knobs of `CompositeTradingLoss`.

    prediction:   "mse" or "huber" on ``(expected_return - target) / return_scale``.
    huber_delta:  Huber threshold, in return_scale units.
    return_scale: typical one-step return size; keep equal to `HeadConfig.return_scale`.
    cost_bps:     one-way transaction cost per unit of position change, in basis points.
    time_axis:    "block" | "horizon" | "both" -- how PnL streams are formed (module docstring).
    eps:          added to the variance (in return_scale units) in the Sharpe denominator so a
                  zero-variance stream has finite value and gradient.
    utility_weight: weight of the mean-variance utility term, the one term that gives positions
                  a size (module docstring). 0 restores the pre-utility loss exactly.
    risk_aversion: gamma of ``mean - gamma/2 * var`` on raw per-step PnL; the optimal constant
                  size of a signal with per-step edge mu and variance s2 is ``mu / (gamma * s2)``.
    """

    prediction_weight: float = 1.0
    utility_weight: float = UTILITY_WEIGHT
    risk_aversion: float = RISK_AVERSION
    sharpe_weight: float = 0.1
    drawdown_weight: float = 0.1
    head_weight: float = 1.0
    cost_bps: float = 5.0
    prediction: Literal["mse", "huber"] = "mse"
    huber_delta: float = 1.0
    return_scale: float = 0.01
    time_axis: Literal["block", "horizon", "both"] = "block"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.prediction not in ("mse", "huber"):
            raise ConfigError(f"LossConfig.prediction must be 'mse' or 'huber', got {self.prediction!r}")
        if self.time_axis not in ("block", "horizon", "both"):
            raise ConfigError(f"LossConfig.time_axis must be 'block', 'horizon' or 'both', got {self.time_axis!r}")
        for name in ("prediction_weight", "utility_weight", "risk_aversion", "sharpe_weight",
                     "drawdown_weight", "head_weight", "cost_bps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"LossConfig.{name} must be a finite number >= 0, got {value!r}")
        for name in ("huber_delta", "return_scale", "eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ConfigError(f"LossConfig.{name} must be a finite number > 0, got {value!r}")
