"""Output heads: turn a backbone's horizon embeddings into trading positions and return forecasts.

Every head maps ``h: [B, H, D]`` to a `HeadOutput` with the same two fields the trading loss
needs -- a position in ``[-1, 1]`` per horizon step and an expected return per horizon step -- plus
whatever its own kind adds (action probabilities, quantiles). Three kinds:

- ``policy`` (`TemporalPolicyHead`): a sell/hold/buy distribution per step; position
  ``p_buy - p_sell``; a small linear expected-return branch on the same hidden representation so
  the loss's prediction term has something to fit. Optional cross-entropy on the target's sign.
- ``regression`` (`RegressionHead`): forecast future returns; position ``tanh(pred / scale)``.
- ``quantile`` (`QuantileHead`): monotone quantiles (median + cumulative softplus increments);
  expected return = the median; position from median / spread. Pinball loss as its extra term.

Heads work in *normalised* return units internally and multiply by ``HeadConfig.return_scale``
on the way out, so a freshly initialised head predicts returns of the right magnitude (~1e-2)
instead of O(1) numbers the prediction loss would then spend its first epochs shrinking.

Dimension legend: ``B`` batch, ``H`` horizon steps, ``D`` model width, ``Q`` quantile levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from plusultra_core.errors import ConfigError
from plusultra_core.head_config import HeadConfig  # noqa: F401  (re-exported beside what it builds)

__all__ = [
    "ACTIONS", "HeadConfig", "HeadOutput", "TemporalPolicyHead", "RegressionHead", "QuantileHead",
    "pinball_loss", "sign_labels", "build_head",
]

# Smallest gap between adjacent quantiles, in return_scale units.
_MIN_GAP = 1e-3

# Order of the action axis of `HeadOutput.probs` / `logits`.
ACTIONS = ("sell", "hold", "buy")


@dataclass
class HeadOutput:
    """What a head returns for ``h: [B, H, D]``.

    position:        [B, H] target exposure in [-1, 1] (negative = short).
    expected_return: [B, H] forecast simple return of each horizon step.
    probs:           [B, H, 3] action probabilities in `ACTIONS` order, or None.
    quantiles:       [B, H, Q] non-decreasing return quantiles, or None.
    logits:          [B, H, 3] pre-softmax action scores (policy head), or None.
    source:          the head that produced this output; `CompositeTradingLoss` calls its
                     ``extra_loss`` so head-specific terms (pinball, CE) are trained without the
                     caller having to pass the head around. None for hand-built outputs.
    """

    position: torch.Tensor
    expected_return: torch.Tensor
    probs: torch.Tensor | None = None
    quantiles: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    source: nn.Module | None = field(default=None, repr=False, compare=False)


def _trunk(cfg: HeadConfig, d_model: int, out_features: int) -> nn.Sequential:
    """Per-step MLP ``[B, H, D] -> [B, H, out]``; the last layer starts at zero so the head's
    first outputs are neutral (flat position, zero expected return) whatever the backbone emits."""
    if cfg.hidden_mult == 0:
        layers: list[nn.Module] = [nn.LayerNorm(d_model), nn.Dropout(cfg.dropout),
                                   nn.Linear(d_model, out_features)]
    else:
        hidden = cfg.hidden_mult * d_model
        layers = [nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(cfg.dropout),
                  nn.Linear(hidden, out_features)]
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


class _Temperature(nn.Module):
    """Positive scalar temperature, learnable through its log when configured."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        log_t = torch.tensor(math.log(cfg.position_temperature))
        if cfg.learn_temperature:
            self.log_t = nn.Parameter(log_t)
        else:
            self.register_buffer("log_t", log_t)

    def forward(self) -> torch.Tensor:
        return self.log_t.exp()


def _check_input(h: torch.Tensor, d_model: int) -> None:
    if h.ndim != 3 or h.shape[-1] != d_model:
        raise ValueError(f"head expects horizon embeddings [B, H, {d_model}], got {tuple(h.shape)}")


def sign_labels(target: torch.Tensor, hold_band: float = 0.0) -> torch.Tensor:
    """Action labels (0 sell, 1 hold, 2 buy) from future returns: |r| <= hold_band is hold."""
    labels = torch.ones_like(target, dtype=torch.long)
    labels = torch.where(target > hold_band, torch.full_like(labels, 2), labels)
    return torch.where(target < -hold_band, torch.zeros_like(labels), labels)


def _check_target(out: HeadOutput, target: torch.Tensor) -> None:
    if target.shape != out.position.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match head output "
                         f"{tuple(out.position.shape)} ([B, H] future returns expected)")


class _Head(nn.Module):
    """What every head shares: ``cfg``, the width ``d_model`` it reads, a `_trunk` with ``outputs``
    values per step and a `_Temperature`; its `extra_loss` is the sum of its `loss_terms`."""

    def __init__(self, cfg: HeadConfig, d_model: int, outputs: int):
        super().__init__()
        self.cfg, self.d_model = cfg, d_model
        self.net = _trunk(cfg, d_model, outputs)
        self.temperature = _Temperature(cfg)

    def extra_loss(self, out: HeadOutput, target: torch.Tensor) -> torch.Tensor:
        """Sum of `loss_terms`, already weighted (a zero scalar when there are none)."""
        return _sum_terms(self.loss_terms(out, target), out.position)


class TemporalPolicyHead(_Head):
    """Buy/hold/sell distribution per horizon step, position ``p_buy - p_sell`` in [-1, 1]."""

    def __init__(self, cfg: HeadConfig, d_model: int):
        # 3 action logits + 1 normalised expected return, from one shared representation.
        super().__init__(cfg, d_model, 4)

    def forward(self, h: torch.Tensor) -> HeadOutput:
        """``h: [B, H, D] -> HeadOutput`` with probs/logits ``[B, H, 3]``."""
        _check_input(h, self.d_model)
        raw = self.net(h)                                   # [B, H, 4]
        logits = raw[..., :3]                               # [B, H, 3] sell, hold, buy
        probs = torch.softmax(logits / self.temperature(), dim=-1)
        position = probs[..., 2] - probs[..., 0]            # [B, H], in [-1, 1] by construction
        expected = raw[..., 3] * self.cfg.return_scale      # [B, H]
        return HeadOutput(position=position, expected_return=expected, probs=probs, logits=logits, source=self)

    def loss_terms(self, out: HeadOutput, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head-specific terms: ``{"ce": ...}`` when ``ce_weight > 0`` (already weighted)."""
        _check_target(out, target)
        if self.cfg.ce_weight == 0 or out.logits is None:
            return {}
        labels = sign_labels(target, self.cfg.hold_band)   # [B, H]
        scaled = out.logits / self.temperature()            # same distribution as out.probs
        ce = F.cross_entropy(scaled.reshape(-1, 3), labels.reshape(-1))
        return {"ce": self.cfg.ce_weight * ce}


class RegressionHead(_Head):
    """Future returns ``[B, H]``; position ``tanh(pred / (return_scale * temperature))``."""

    def __init__(self, cfg: HeadConfig, d_model: int):
        super().__init__(cfg, d_model, 1)

    def forward(self, h: torch.Tensor) -> HeadOutput:
        """``h: [B, H, D] -> HeadOutput`` (no probs / quantiles)."""
        _check_input(h, self.d_model)
        z = self.net(h).squeeze(-1)                         # [B, H] normalised return forecast
        position = torch.tanh(z / self.temperature())
        return HeadOutput(position=position, expected_return=z * self.cfg.return_scale, source=self)

    def loss_terms(self, out: HeadOutput, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """No head-specific terms: the composite loss's prediction term already fits the forecast."""
        _check_target(out, target)
        return {}


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, levels) -> torch.Tensor:
    """Mean pinball (quantile) loss ``max(tau * e, (tau - 1) * e)`` with ``e = target - q_tau``.

    quantiles: [..., Q]; target: [...] (broadcast against every level); levels: Q values in (0, 1).
    Returned in the units of ``target`` (returns), averaged over all elements and levels.
    """
    tau = torch.as_tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    if tau.ndim != 1 or tau.numel() != quantiles.shape[-1]:
        raise ValueError(f"pinball_loss: {tau.numel()} levels for quantiles of shape {tuple(quantiles.shape)}")
    err = target.unsqueeze(-1) - quantiles                   # [..., Q]
    return torch.maximum(tau * err, (tau - 1.0) * err).mean()


class QuantileHead(_Head):
    """Monotone return quantiles ``[B, H, Q]``; expected return = median; position from median/spread."""

    def __init__(self, cfg: HeadConfig, d_model: int):
        # 1 median + (Q-1) increments; softplus(0) = log 2 keeps the initial quantiles apart.
        super().__init__(cfg, d_model, len(cfg.quantiles))
        self.levels = cfg.quantiles
        self.median_index = self.levels.index(0.5)
        # Standard-normal distance between the outer levels turns the outer spread into a
        # sigma estimate, so median / sigma is a z-score whatever levels are configured.
        outer = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([self.levels[0], self.levels[-1]]))
        self.register_buffer("z_span", (outer[1] - outer[0]).float())

    def forward(self, h: torch.Tensor) -> HeadOutput:
        """``h: [B, H, D] -> HeadOutput`` with quantiles ``[B, H, Q]`` non-decreasing along Q."""
        _check_input(h, self.d_model)
        raw = self.net(h)                                   # [B, H, Q]
        # [B, H, Q-1] gaps; the floor keeps them > 0 where softplus underflows, so quantiles stay
        # strictly increasing and the spread (a divisor below) never reaches 0.
        steps = F.softplus(raw[..., 1:]) + _MIN_GAP
        offsets = torch.cat([torch.zeros_like(raw[..., :1]), steps.cumsum(-1)], dim=-1)  # [B, H, Q]
        # Anchor the cumulative offsets at the median so raw[..., 0] *is* the median: a fresh
        # (zero-initialised) head then predicts a zero median and a flat position.
        offsets = offsets - offsets[..., self.median_index:self.median_index + 1]
        z = raw[..., :1] + offsets                          # [B, H, Q] non-decreasing along Q
        quantiles = z * self.cfg.return_scale
        median = quantiles[..., self.median_index]          # [B, H]
        sigma = (quantiles[..., -1] - quantiles[..., 0]) / self.z_span  # [B, H] > 0
        position = torch.tanh(median / (sigma * self.temperature()))
        return HeadOutput(position=position, expected_return=median, quantiles=quantiles, source=self)

    def loss_terms(self, out: HeadOutput, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"pinball": pinball_weight * pinball / return_scale}`` (normalised so it is O(1))."""
        _check_target(out, target)
        if out.quantiles is None:
            raise ValueError("QuantileHead.loss_terms needs HeadOutput.quantiles")
        pin = pinball_loss(out.quantiles, target, self.levels) / self.cfg.return_scale
        return {"pinball": self.cfg.pinball_weight * pin}


def _sum_terms(terms: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    if not terms:
        return like.new_zeros(())
    return torch.stack(list(terms.values())).sum()


_HEADS = {"policy": TemporalPolicyHead, "regression": RegressionHead, "quantile": QuantileHead}


def build_head(cfg: HeadConfig, d_model: int) -> nn.Module:
    """Build the head named by ``cfg.kind`` for backbone width ``d_model``."""
    if not isinstance(d_model, int) or d_model <= 0:
        raise ConfigError(f"build_head: d_model must be a positive integer, got {d_model!r}")
    return _HEADS[cfg.kind](cfg, d_model)
