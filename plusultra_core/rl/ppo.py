"""PPO fine-tuning of a supervised policy head on the vectorised execution simulator.

The policy is the supervised model's `TemporalPolicyHead` itself: its first horizon step's
sell/hold/buy distribution (``softmax(logits / temperature)``) is the action distribution, an
action is the position -1 / 0 / +1 held over the next bar, and the served (deterministic) decision
is the distribution's mean ``p_buy - p_sell`` -- exactly the ``position`` the head already emits,
so an RL checkpoint is served, evaluated and ensembled like a supervised one. A new value head
(`ValueHead`) reads the same embedding. PPO (Schulman et al. 2017): clipped surrogate, value
loss, entropy bonus, GAE(lambda) (Schulman et al. 2016), minibatch epochs, gradient-norm clip.

Why our own PPO and not Stable-Baselines3 / TorchRL: those step ``gym``/``TensorDict``
environments one step at a time (a vectorised env is still a Python ``step`` per bar), while our
market is a whole-trajectory simulator: `simulate` prices ``[B, S, T]`` positions in one call
(the volume cap is its only loop, over bars). Sampling every action of a rollout at once and
pricing the trajectory afterwards is exact here because the observation (the window ending at
t) does not depend on the agent's earlier actions; the actions' interaction (costs of position
changes, fills under a cap) is in the rewards, which is what GAE propagates. The PPO update
itself is ~60 lines, tested against hand-computed values.

Reward of (symbol, bar): the simulator's net PnL of that symbol over the next bar minus a risk
term (``RLConfig.risk``), divided by ``reward_scale``. Dimension legend: ``B`` segments (parallel
environments per symbol), ``S`` symbols, ``L`` bars per segment, ``D`` model width, ``K``
samples (acting steps of a rollout), ``M`` minibatch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from plusultra_core import metrics
from plusultra_core.errors import ConfigError
from plusultra_core.heads import TemporalPolicyHead
from plusultra_core.rl.config import RLConfig
from plusultra_core.rl.env import MarketEnv, embed_all

__all__ = ["ACTION_POSITIONS", "ValueHead", "ActorCritic", "gae", "sample_actions", "risk_adjusted_reward", "PPOResult",
           "train_ppo", "evaluate_policy"]

# position of each action, in `plusultra_core.heads.ACTIONS` order (sell, hold, buy)
ACTION_POSITIONS = torch.tensor([-1.0, 0.0, 1.0])


class ValueHead(nn.Module):
    """State value ``[..., D] -> [...]`` from the policy's embedding (a new, small MLP)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).squeeze(-1)


class ActorCritic(nn.Module):
    """A `SupervisedTradingModule`'s policy head (the actor) beside a new `ValueHead` (the critic)."""

    def __init__(self, module, value_hidden: int):
        super().__init__()
        if not isinstance(module.head, TemporalPolicyHead):
            raise ConfigError(f"PPO fine-tunes a policy head (head.kind: policy); this model has "
                              f"{type(module.head).__name__}")
        self.module = module
        self.value = ValueHead(module.model_cfg.d_model, value_hidden)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``[K, C, F]`` -> first-horizon-step embeddings ``[K, D]`` (through the backbone)."""
        return self.module.backbone(x).horizon[:, 0]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``[..., D] -> [..., 3]`` action logits of the head's own distribution (temperature applied)."""
        head = self.module.head
        out = head(h.reshape(-1, 1, h.shape[-1]))                                    # [K, 1, 3]
        return (out.logits[:, 0] / head.temperature()).reshape(*h.shape[:-1], 3)

    def mean_position(self, h: torch.Tensor) -> torch.Tensor:
        """``[..., D] -> [...]`` the served decision ``p_buy - p_sell`` (= `HeadOutput.position`)."""
        probs = torch.softmax(self.logits(h), dim=-1)
        return probs[..., 2] - probs[..., 0]


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float,
        last_value: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates along the last (time) axis.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (``V_L = last_value``, 0 = the episode ends) and
    ``A_t = delta_t + gamma * lam * A_{t+1}``; returns ``(advantages, value targets A + V)``, both
    ``[..., L]``. A reverse scan over time, vectorised over every leading axis (never per symbol).
    """
    if rewards.shape != values.shape:
        raise ValueError(f"gae: rewards {tuple(rewards.shape)} and values {tuple(values.shape)} differ")
    nxt = torch.zeros_like(values[..., 0]) if last_value is None else last_value
    running = torch.zeros_like(values[..., 0])
    adv = torch.empty_like(values)
    for t in range(values.shape[-1] - 1, -1, -1):  # the GAE recursion is sequential in time only
        delta = rewards[..., t] + gamma * nxt - values[..., t]
        running = delta + gamma * lam * running
        adv[..., t] = running
        nxt = values[..., t]
    return adv, adv + values


def sample_actions(probs: torch.Tensor, persistence: float, gen: torch.Generator) -> torch.Tensor:
    """Actions ``[..., L]`` from per-step distributions ``probs [..., L, 3]``, by inverse CDF.

    Each step's uniform is ``Phi(g_t)`` with a Gaussian AR(1) ``g_t = rho g_{t-1} + sqrt(1 - rho^2)
    xi_t`` along time (``rho = persistence``): every action is still distributed exactly as its
    step's ``probs`` (the uniform is uniform at every step), but successive draws of a symbol are
    correlated, so exploration does not churn the book bar to bar and drown the edge in costs
    (temporally correlated exploration noise, as in Eberhard et al. 2023, "Pink noise is all you
    need"). ``rho = 0`` is independent sampling. A scan over time only, vectorised over the rest.
    """
    noise = torch.randn(probs.shape[:-1], generator=gen)                                 # [..., L]
    if persistence > 0:
        g = torch.empty_like(noise)
        g[..., 0] = noise[..., 0]
        keep = math.sqrt(1.0 - persistence ** 2)
        for t in range(1, noise.shape[-1]):  # AR(1) recursion: sequential in time only
            g[..., t] = persistence * g[..., t - 1] + keep * noise[..., t]
        noise = g
    u = torch.special.ndtr(noise)                                                        # [..., L] ~ U(0, 1)
    cdf = probs.cumsum(-1)                                                               # [..., L, 3]
    return (u[..., None] > cdf[..., :-1]).sum(-1)                                        # [..., L] in {0, 1, 2}


def risk_adjusted_reward(net_pnl: np.ndarray, cfg: RLConfig, scale: float) -> np.ndarray:
    """Per (symbol, bar) reward from net PnL: minus the configured risk term, over ``scale``."""
    if cfg.risk == "variance":
        penalty = 0.5 * cfg.risk_aversion * net_pnl ** 2
    elif cfg.risk == "downside":
        penalty = 0.5 * cfg.risk_aversion * np.minimum(net_pnl, 0.0) ** 2
    else:
        penalty = 0.0
    return (net_pnl - penalty) / scale


@dataclass
class PPOResult:
    """What `train_ppo` returns.

    state:           the fine-tuned supervised module's state dict (servable, value head not in it).
    value_state:     the value head's state dict (training only).
    history:         one dict per iteration: mean reward, policy/value loss, entropy, approx KL,
                     clip fraction, explained variance, sampled-rollout net Sharpe, and (when
                     evaluated) the selection slice's deterministic net Sharpe.
    warm_start:      `evaluate_policy` of the warm start on the selection slice.
    final:           `evaluate_policy` of the returned weights on the selection slice.
    best_iteration:  iteration of the returned weights (0 = the warm start).
    fit_bars, selection_bars: bars of the two slices; reward_scale: the divisor used.
    """

    state: dict
    value_state: dict
    history: list[dict] = field(default_factory=list)
    warm_start: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    best_iteration: int = 0
    fit_bars: int = 0
    selection_bars: int = 0
    reward_scale: float = 1.0

    def stats(self) -> dict:
        """JSON-able summary for the checkpoint sidecar."""
        return {"best_iteration": self.best_iteration, "fit_bars": self.fit_bars,
                "selection_bars": self.selection_bars, "reward_scale": self.reward_scale,
                "warm_start": self.warm_start, "final": self.final, "history": self.history}


def _split(env: MarketEnv, cfg: RLConfig, fit_end) -> tuple[np.ndarray, np.ndarray]:
    """Grid bars to train on and bars to select on (after them, never trained on)."""
    n = len(env.timestamps)
    if fit_end is None:
        n_fit = n - max(2, int(round(cfg.validation_fraction * n)))
    else:
        # a decision earns the next bar: fit decisions stop one bar before fit_end
        n_fit = int(np.searchsorted(env.timestamps, np.datetime64(fit_end, "ns"), side="left"))
    if n_fit < 2 or n - n_fit < 2:
        raise ConfigError(f"rl: {n_fit} fit bars and {n - n_fit} selection bars; both need >= 2 "
                          f"(fit_end {fit_end}, validation_fraction {cfg.validation_fraction})")
    return np.arange(n_fit), np.arange(n_fit, n)


def evaluate_policy(ac: ActorCritic, env: MarketEnv, times: np.ndarray, emb: torch.Tensor | None = None,
                    periods_per_year: int = 252) -> dict:
    """Deterministic (served) policy on grid bars ``times``: net Sharpe, turnover, costs.

    Positions are ``p_buy - p_sell`` where a window exists, flat elsewhere; the book enters flat
    at the first bar. ``emb`` is the frozen ``[S, T, D]`` embedding (None: embed now).
    """
    with torch.no_grad():
        emb = embed_all(ac.module.backbone, env) if emb is None else emb
        pos = ac.mean_position(emb[:, times]).double().numpy() * env.acting[:, times]      # [S, T']
    res = env.simulate(pos, times=times)
    net = res.portfolio_net                                                              # [T']
    return {"net_sharpe": float(metrics.sharpe_ratio(net, periods_per_year=periods_per_year)),
            "gross_sharpe": float(metrics.sharpe_ratio(res.portfolio_gross, periods_per_year=periods_per_year)),
            "mean_net": float(net.mean()), "turnover": float(res.turnover.mean()),
            "cost": float(res.total_cost.sum()), "exposure": float(np.abs(pos).sum(axis=0).mean())}


def _segments(fit: np.ndarray, cfg: RLConfig, gen: torch.Generator) -> np.ndarray:
    """``[B, L]`` grid bars of this rollout's segments (random contiguous slices of the fit range)."""
    if cfg.rollout_bars is None or cfg.rollout_bars >= len(fit):
        return fit[None, :]
    starts = torch.randint(0, len(fit) - cfg.rollout_bars + 1, (cfg.segments,), generator=gen).numpy()
    return fit[starts[:, None] + np.arange(cfg.rollout_bars)[None, :]]


def _sharpe_score(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def train_ppo(module, env: MarketEnv, cfg: RLConfig, *, fit_end=None, log=None) -> PPOResult:
    """Fine-tune ``module`` (a `SupervisedTradingModule` with a policy head) with PPO on ``env``.

    Trains on the bars before ``fit_end`` (None: all but the last ``validation_fraction``),
    evaluates the deterministic policy on the bars after it every ``eval_every`` iterations, and
    returns the best weights there (the warm start included) when ``keep_best``. ``module`` is
    modified in place (it holds the returned weights). ``log(str)`` receives a line per evaluation.
    Same ``cfg.seed``, data and thread count -> identical weights.
    """
    module.eval()  # no dropout: the rollout's and the update's log-probs agree at ratio 1
    fit, selection = _split(env, cfg, fit_end)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)                    # the value head's init, without touching global state
        ac = ActorCritic(module, cfg.value_hidden)
    acting_fit = env.acting[:, fit]
    scale = cfg.reward_scale or float(np.std(env.returns[:, fit][acting_fit])) or 1.0
    params = list(module.head.parameters()) + list(ac.value.parameters())
    if cfg.finetune_backbone:
        params += list(module.backbone.parameters())
    else:
        for p in module.backbone.parameters():
            p.requires_grad_(False)
    optimiser = torch.optim.Adam(params, lr=cfg.lr)
    emb = None if cfg.finetune_backbone else embed_all(module.backbone, env, cfg.embed_batch)   # [S, T, D]

    warm = evaluate_policy(ac, env, selection, emb, env.simulator.periods_per_year)
    best = (_sharpe_score(warm["net_sharpe"]), 0, copy.deepcopy(module.state_dict()), copy.deepcopy(ac.value.state_dict()))
    history: list[dict] = []
    for it in range(1, cfg.iterations + 1):
        stats = _iteration(ac, env, cfg, fit, emb, scale, gen, optimiser, params)
        if it % cfg.eval_every == 0 or it == cfg.iterations:
            ev = evaluate_policy(ac, env, selection, emb, env.simulator.periods_per_year)
            stats["selection_net_sharpe"] = ev["net_sharpe"]
            if log is not None:
                log(f"ppo iteration {it}: selection net Sharpe {ev['net_sharpe']:.3f} "
                    f"(warm start {warm['net_sharpe']:.3f}), entropy {stats['entropy']:.3f}")
            if not cfg.keep_best or _sharpe_score(ev["net_sharpe"]) > best[0]:
                best = (_sharpe_score(ev["net_sharpe"]), it, copy.deepcopy(module.state_dict()),
                        copy.deepcopy(ac.value.state_dict()))
        history.append({"iteration": it, **{k: round(float(v), 6) for k, v in stats.items()}})
    _, best_it, state, value_state = best
    module.load_state_dict(state)
    ac.value.load_state_dict(value_state)
    for p in module.backbone.parameters():
        p.requires_grad_(True)
    final = evaluate_policy(ac, env, selection, emb, env.simulator.periods_per_year)
    return PPOResult(state=module.state_dict(), value_state=ac.value.state_dict(), history=history,
                     warm_start=warm, final=final, best_iteration=best_it, fit_bars=len(fit),
                     selection_bars=len(selection), reward_scale=float(scale))


def _iteration(ac: ActorCritic, env: MarketEnv, cfg: RLConfig, fit: np.ndarray, emb, scale: float,
               gen: torch.Generator, optimiser, params) -> dict:
    """One rollout over every symbol x segment x bar, then ``epochs`` x ``minibatches`` PPO steps."""
    times = _segments(fit, cfg, gen)                                                   # [B, L]
    acting = torch.from_numpy(np.moveaxis(env.acting[:, times], 0, 1).copy())          # [B, S, L]
    b_idx, s_idx, l_idx = torch.nonzero(acting, as_tuple=True)                         # [K] each
    t_idx = torch.from_numpy(times)[b_idx, l_idx]                                      # [K] grid bars
    with torch.no_grad():
        h = emb[s_idx, t_idx] if emb is not None else _embed_batched(ac, env, s_idx, t_idx, cfg.embed_batch)
        logits = ac.logits(h)                                                          # [K, 3]
        probs = torch.zeros((*acting.shape, 3))
        probs[b_idx, s_idx, l_idx] = torch.softmax(logits, -1)
        actions = sample_actions(probs, cfg.noise_persistence, gen)[b_idx, s_idx, l_idx]    # [K]
        logp_old = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
        values = torch.zeros(acting.shape)
        values[b_idx, s_idx, l_idx] = ac.value(h)
    positions = torch.zeros(acting.shape, dtype=torch.float64)                         # flat where not acting
    positions[b_idx, s_idx, l_idx] = ACTION_POSITIONS[actions].double()
    sim = env.simulate(positions.numpy(), times=times)                                 # [B, S, L]
    rewards = torch.from_numpy(risk_adjusted_reward(sim.net_pnl, cfg, scale)).float()
    adv_all, ret_all = gae(rewards, values, cfg.gamma, cfg.gae_lambda)                 # [B, S, L]
    adv, ret = adv_all[b_idx, s_idx, l_idx], ret_all[b_idx, s_idx, l_idx]              # [K]

    k = len(actions)
    size = max(1, k // cfg.minibatches)
    log: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "approx_kl": [], "clip_frac": []}
    for _ in range(cfg.epochs):
        order = torch.randperm(k, generator=gen)
        for lo in range(0, k - size + 1, size):
            mb = order[lo:lo + size]                                                   # [M]
            h_mb = h[mb] if emb is not None else _embed_batched(ac, env, s_idx[mb], t_idx[mb], cfg.embed_batch, grad=True)
            logits_new = ac.logits(h_mb)
            logp_all = torch.log_softmax(logits_new, -1)
            logp = logp_all.gather(-1, actions[mb, None]).squeeze(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            a_mb = adv[mb]
            a_mb = (a_mb - a_mb.mean()) / (a_mb.std() + 1e-8)                          # per-minibatch normalisation
            ratio = (logp - logp_old[mb]).exp()
            surrogate = torch.minimum(ratio * a_mb, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a_mb)
            policy_loss = -surrogate.mean()
            value_loss = 0.5 * (ac.value(h_mb) - ret[mb]).pow(2).mean()
            loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimiser.step()
            with torch.no_grad():
                log["policy_loss"].append(float(policy_loss))
                log["value_loss"].append(float(value_loss))
                log["entropy"].append(float(entropy))
                log["approx_kl"].append(float((logp_old[mb] - logp).mean()))
                log["clip_frac"].append(float(((ratio - 1).abs() > cfg.clip).float().mean()))
    var_ret = float(ret.var())
    explained = 1.0 - float((ret - values[b_idx, s_idx, l_idx]).var()) / var_ret if var_ret > 0 else 0.0
    net = sim.portfolio_net                                                            # [B, L]
    sharpe = np.nanmean([metrics.sharpe_ratio(row, periods_per_year=env.simulator.periods_per_year) for row in net])
    return {"mean_reward": float(rewards[b_idx, s_idx, l_idx].mean()), "rollout_net_sharpe": float(sharpe),
            "explained_variance": explained, **{name: float(np.mean(v)) for name, v in log.items()}}


def _embed_batched(ac: ActorCritic, env: MarketEnv, s_idx: torch.Tensor, t_idx: torch.Tensor, batch: int,
                   grad: bool = False) -> torch.Tensor:
    """Embeddings ``[K, D]`` of the windows at (s_idx, t_idx) through the (fine-tuned) backbone."""
    with torch.set_grad_enabled(grad):
        return torch.cat([ac.embed(env.windows(s_idx[lo:lo + batch], t_idx[lo:lo + batch]))
                          for lo in range(0, len(s_idx), batch)])
