"""`RLConfig`: every knob of PPO fine-tuning on the execution simulator, validated by name.

Loaded from YAML (``configs/rl.yaml``) with `load_rl_config`, built through
`plusultra_core.config.from_dict`, so an unknown key or a wrongly typed value fails naming the
file and the key; the ``simulator`` section is a `SimulatorConfig` (its own validation names
``SimulatorConfig.<field>``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from plusultra_core.errors import ConfigError
from plusultra_core.field_checks import is_number, require
from plusultra_core.simulation import SimulatorConfig

__all__ = ["RLConfig", "RISK_TERMS", "load_rl_config"]

RISK_TERMS = ("none", "variance", "downside")


def _default_simulator() -> SimulatorConfig:
    # Frictions a window frame can price without bar volumes (no impact, no volume cap): the
    # graph's window tensors hold returns only. A frame with close and volume (and a config
    # asking for impact or a cap) gets the full participation model.
    return SimulatorConfig(fee_bps=1.0, half_spread_bps=2.0, impact_bps=0.0, max_participation=None,
                           borrow_bps=50.0)


@dataclass(frozen=True)
class RLConfig:
    """PPO fine-tuning of a supervised policy head on `plusultra_core.simulation.simulate`.

    seed:              seeds the torch generator of action sampling, segment starts, minibatch
                       order and the value head's initialisation (same seed -> same weights).
    iterations:        PPO updates; each is one vectorised rollout + ``epochs`` passes over it.
    epochs:            optimisation passes over one rollout.
    minibatches:       minibatches per epoch (the rollout's valid samples, shuffled).
    segments:          environments per symbol per rollout: random contiguous time slices of
                       ``rollout_bars`` bars, simulated together as ``[segments, S, L]``.
    rollout_bars:      bars per segment; None = the whole fit range (then ``segments`` is 1).
    gamma, gae_lambda: discount and GAE(lambda) of the advantage (an action's cost reaches the
                       next bar through the position change, so gamma > 0 matters).
    noise_persistence: correlation along time of the exploration draws (`ppo.sample_actions`):
                       each action still follows its step's distribution, but a symbol's draws
                       persist, so exploring does not churn the book (0 = independent draws).
    clip:              PPO ratio clip epsilon.
    lr:                Adam learning rate of head, value head (and backbone when fine-tuned).
    entropy_coef:      weight of the entropy bonus.
    value_coef:        weight of the value loss.
    max_grad_norm:     global gradient-norm clip.
    risk:              reward risk term: "none", "variance" (``pnl - risk_aversion/2 * pnl**2``,
                       the per-step mean-variance utility of `losses.utility_penalty`) or
                       "downside" (``pnl - risk_aversion/2 * min(pnl, 0)**2``).
    risk_aversion:     gamma of that term, raw return units (as `LossConfig.risk_aversion`).
    reward_scale:      rewards are divided by it; None = the std of the fit range's returns
                       (so rewards are O(1) whatever the market's volatility).
    value_hidden:      hidden width of the new value head.
    finetune_backbone: also train the backbone (re-embeds every rollout; slower); False keeps
                       it frozen and embeds every window once.
    validation_fraction: when the caller gives no ``fit_end``, the last share of the bars is the
                       selection slice (never trained on).
    eval_every:        iterations between deterministic evaluations on the selection slice.
    keep_best:         return the weights (the warm start included) with the best selection-slice
                       net Sharpe, instead of the last iterate.
    embed_batch:       windows per backbone forward pass when embedding.
    simulator:         the frictions and limits rewards are computed with.
    """

    seed: int = 0
    iterations: int = 30
    epochs: int = 4
    minibatches: int = 4
    segments: int = 4
    rollout_bars: int | None = 256
    gamma: float = 0.9
    gae_lambda: float = 0.9
    noise_persistence: float = 0.9
    clip: float = 0.2
    lr: float = 3e-4
    entropy_coef: float = 0.003
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    risk: str = "variance"
    risk_aversion: float = 10.0
    reward_scale: float | None = None
    value_hidden: int = 64
    finetune_backbone: bool = False
    validation_fraction: float = 0.2
    eval_every: int = 5
    keep_best: bool = True
    embed_batch: int = 1024
    simulator: SimulatorConfig = field(default_factory=_default_simulator)

    def __post_init__(self) -> None:
        def integer(name: str, low: int) -> None:
            # a Python int only, not numpy's: `to_dict` goes into JSON sidecars as it is
            require(self, name, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
                    f"an integer >= {low}")

        def number(name: str, ok, what: str) -> None:
            require(self, name, lambda v: is_number(v) and ok(v), what)

        integer("seed", 0)
        for name in ("iterations", "epochs", "minibatches", "segments", "value_hidden", "eval_every", "embed_batch"):
            integer(name, 1)
        if self.rollout_bars is not None:
            integer("rollout_bars", 2)
        for name in ("gamma", "gae_lambda"):
            number(name, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        number("clip", lambda v: 0 < v < 1, "a number in (0, 1)")
        number("noise_persistence", lambda v: 0 <= v < 1, "a number in [0, 1)")
        number("lr", lambda v: v > 0, "a number > 0")
        for name in ("entropy_coef", "value_coef", "risk_aversion"):
            number(name, lambda v: v >= 0, "a number >= 0")
        number("max_grad_norm", lambda v: v > 0, "a number > 0")
        number("validation_fraction", lambda v: 0 < v < 1, "a number in (0, 1)")
        if self.reward_scale is not None:
            number("reward_scale", lambda v: v > 0, "a number > 0 or null (the returns' std)")
        if self.risk not in RISK_TERMS:
            raise ConfigError(f"RLConfig.risk must be one of {', '.join(RISK_TERMS)}, got {self.risk!r}")
        if not isinstance(self.simulator, SimulatorConfig):
            raise ConfigError(f"RLConfig.simulator must be a SimulatorConfig, got {type(self.simulator).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping (the simulator as its field mapping), for sidecars."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "simulator"}
        out["simulator"] = {k: (None if v == math.inf else v) if isinstance(v, float) else v
                            for k, v in self.simulator.to_dict().items()}
        return out


def load_rl_config(source: str | Path | Mapping[str, Any]) -> RLConfig:
    """`RLConfig` from a YAML path (``base:`` chains allowed) or a mapping; errors name file and key.

    ``simulator.position_limit: null`` means no per-symbol limit (``math.inf``), since YAML has
    no portable infinity.
    """
    from plusultra_core.config import from_dict, read_yaml

    data, where = (dict(source), "<mapping>") if isinstance(source, Mapping) else (read_yaml(source), str(source))
    sim = data.get("simulator")
    if isinstance(sim, Mapping) and "position_limit" in sim and sim["position_limit"] is None:
        data["simulator"] = {**sim, "position_limit": math.inf}
    return from_dict(RLConfig, data, where)
