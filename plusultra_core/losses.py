"""Risk-aware trading loss: return-forecast error + utility, Sharpe and drawdown terms on a costed PnL.

`CompositeTradingLoss` scores a head's `HeadOutput` against future returns ``target: [B, H]``:

    total = prediction_weight * prediction      # error of expected_return vs target, in return_scale units
          + utility_weight    * utility         # -(mean - risk_aversion/2 * var) of the PnL, along time
          + sharpe_weight     * sharpe          # -mean/std of the PnL stream, along time
          + drawdown_weight   * drawdown        # max drawdown of cumulative PnL, along time
          + head_weight       * head            # the head's own terms (pinball, sign cross-entropy)

The PnL stream is differentiable: ``pnl_t = position_t * r_t - cost * |position_t - position_{t-1}|``
where ``r_t`` is the return earned by holding ``position_t`` (the next bar's return) and
``cost = cost_bps * 1e-4``. Sharpe and drawdown only make sense along *time*, never across a
shuffled batch, so the loss builds streams from the batch layout:

- ``time_axis="block"``: the batch is ``blocks`` time-contiguous blocks (`TimeContiguousBatchSampler`),
  ``[B, H] -> [blocks, B/blocks, H]``; each block's stream is the first horizon step's position
  times the first horizon step's return, over consecutive samples.
- ``time_axis="horizon"``: each sample's own H-step position path against its H-step returns.
- ``time_axis="both"``: the mean of the two.

Sharpe and drawdown are computed on PnL divided by ``return_scale`` (so ``eps`` is relative to a
typical return and drawdown is measured in typical daily moves); ``turnover`` and ``mean_pnl`` in
the breakdown are in raw units. Blocks shorter than 2 samples (a tiny last batch) contribute no
Sharpe term (a sample standard deviation needs 2 points); their drawdown still counts. Horizon
streams need H >= 2 (a ValueError says so).

Position size. Sharpe is invariant to the scale of the positions and the drawdown and cost terms
only pull the size towards zero, so on their own they leave the size undetermined (trained models
drift to a tiny, near-constant position). The mean-variance utility term fixes it: on raw PnL,

    utility = -(mean(pnl) - risk_aversion / 2 * var(pnl)) / return_scale

per stream (population variance along the same time axis as Sharpe, so a 1-sample block still
counts its mean), averaged over streams. For a position ``c * s_t`` on a signal whose PnL per
unit has mean ``mu`` and variance ``s2``, it is minimised at ``c* = mu / (risk_aversion * s2)``
(Merton's fraction; the head's [-1, 1] range clips it), finite and non-zero whenever there is an
edge. ``risk_aversion`` is in raw return units (a daily-return variance of 1e-4 and an edge of
0.05 daily sigma give ``c* = 5 / risk_aversion``); dividing by ``return_scale`` only makes the
term O(0.1) like the Sharpe term. Because the variance penalty is quadratic in each step's
``position * return``, the term also sizes down on volatile days (volatility targeting).

Dimension legend: ``B`` batch, ``H`` horizon steps, ``K`` blocks, ``L`` block length, ``T`` stream length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plusultra_core.heads import HeadOutput
from plusultra_core.loss_config import LossConfig  # noqa: F401  (re-exported beside the loss it configures)

__all__ = ["LossConfig", "LossBreakdown", "CompositeTradingLoss", "pnl_stream",
           "sharpe_penalty", "drawdown_penalty", "utility_penalty"]


@dataclass
class LossBreakdown:
    """Every term of one loss evaluation (scalar tensors; ``total`` carries the gradient).

    ``sharpe`` is the penalty (negative Sharpe), ``utility`` the negative mean-variance utility in
    return_scale units (0 when ``utility_weight`` is 0); ``turnover`` is mean |position change| per step
    and ``mean_pnl`` the mean net PnL per step, both raw units; ``cost`` the mean cost per step.
    """

    total: torch.Tensor
    prediction: torch.Tensor
    utility: torch.Tensor
    sharpe: torch.Tensor
    drawdown: torch.Tensor
    head: torch.Tensor
    turnover: torch.Tensor
    mean_pnl: torch.Tensor
    cost: torch.Tensor

    def to_dict(self) -> dict[str, float]:
        """Detached Python floats, for logging."""
        return {k: float(v.detach()) for k, v in vars(self).items()}


def pnl_stream(position, returns, cost: float, initial_position: float | None = 0.0):
    """Net PnL per step along the last axis: ``position_t * returns_t - cost * |Δposition_t|``.

    position, returns: ``[..., T]`` torch tensors or numpy arrays (same type, same shape);
    ``returns[..., t]`` must be the return earned by holding ``position[..., t]`` (the next bar's
    return -- the caller aligns). cost: per unit of position change (``cost_bps * 1e-4``).
    initial_position: the position before the first step (0.0 = enter from flat, as
    `metrics.turnover` counts it); None charges nothing on the first step (its predecessor is
    unknown, e.g. at the start of a training block). Returns ``[..., T]`` of the same type.
    """
    if position.shape != returns.shape:
        raise ValueError(f"pnl_stream: position {tuple(position.shape)} and returns "
                         f"{tuple(returns.shape)} must have the same shape")
    if isinstance(position, torch.Tensor):
        change = position.diff(dim=-1)                                  # [..., T-1]
        first = (position[..., :1] - initial_position if initial_position is not None
                 else torch.zeros_like(position[..., :1]))              # [..., 1]
        change = torch.cat([first, change], dim=-1)                     # [..., T]
    else:
        position, returns = np.asarray(position, dtype=np.float64), np.asarray(returns, dtype=np.float64)
        before = (position[..., :1] if initial_position is None
                  else np.full_like(position[..., :1], initial_position))  # [..., 1]
        change = np.diff(position, axis=-1, prepend=before)             # [..., T]
    return position * returns - cost * abs(change)


def sharpe_penalty(pnl: torch.Tensor, eps: float) -> torch.Tensor:
    """``-mean / sqrt(var + eps)`` of each stream ``[..., T]`` (sample variance), averaged.

    Streams with T < 2 have no sample variance: a zero (still graph-connected) is returned.
    """
    if pnl.shape[-1] < 2:
        return pnl.sum() * 0.0
    mean = pnl.mean(dim=-1)                                             # [...]
    var = pnl.var(dim=-1, correction=1)                                 # [...]
    return -(mean / torch.sqrt(var + eps)).mean()


def utility_penalty(pnl: torch.Tensor, risk_aversion: float) -> torch.Tensor:
    """``-(mean - risk_aversion / 2 * var)`` of each stream ``[..., T]``, averaged over streams.

    ``pnl`` in raw return units (the caller divides the result by ``return_scale``). Population
    variance (``correction=0``): defined for T = 1 (it is 0 there, leaving the mean) and, unlike
    the sample variance, the exact quadratic whose optimum is ``mu / (risk_aversion * s2)``.
    """
    mean = pnl.mean(dim=-1)                                             # [...]
    var = pnl.var(dim=-1, correction=0)                                 # [...]
    return -(mean - 0.5 * risk_aversion * var).mean()


def drawdown_penalty(pnl: torch.Tensor) -> torch.Tensor:
    """Max drawdown of cumulative PnL per stream ``[..., T]`` (starting at 0), averaged.

    Plain ``cummax``: its subgradient routes through the peak and the trough, which is enough.
    """
    wealth = torch.cat([torch.zeros_like(pnl[..., :1]), pnl.cumsum(dim=-1)], dim=-1)  # [..., T+1]
    peak = torch.cummax(wealth, dim=-1).values
    return (peak - wealth).amax(dim=-1).mean()


class CompositeTradingLoss(nn.Module):
    """Prediction error + utility, Sharpe and drawdown terms along time + head terms (module docstring)."""

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg or LossConfig()

    @property
    def cost(self) -> float:
        """Cost per unit of position change (``cost_bps * 1e-4``)."""
        return self.cfg.cost_bps * 1e-4

    def forward(self, out: HeadOutput, target: torch.Tensor, blocks: int | None = None,
                *, head: nn.Module | None = None) -> LossBreakdown:
        """Score ``out`` against future returns ``target: [B, H]``.

        blocks: how many time-contiguous blocks the batch is made of (required for
        ``time_axis`` "block" / "both"). head: whose ``extra_loss`` gives the head term; default
        ``out.source`` (set by the built-in heads), none -> 0.
        """
        cfg = self.cfg
        self._check(out, target, cfg.time_axis)
        scale = cfg.return_scale

        # -- prediction error on returns (never prices), in return_scale units: O(1) for any market.
        err = (out.expected_return - target) / scale                   # [B, H]
        if cfg.prediction == "mse":
            prediction = err.pow(2).mean()
        else:
            prediction = F.huber_loss(err, torch.zeros_like(err), delta=cfg.huber_delta)

        # -- PnL streams along time, one or two layouts.
        streams = []
        if cfg.time_axis in ("block", "both"):
            streams.append(self._block_streams(out.position, target, blocks))  # 2 x [K, L]
        if cfg.time_axis in ("horizon", "both"):
            streams.append((out.position, target))                             # 2 x [B, H]
        sharpe, drawdown, utility, turnover, mean_pnl, cost = [], [], [], [], [], []
        for pos, ret in streams:
            pnl = pnl_stream(pos, ret, self.cost, initial_position=None)       # [N, T]
            utility.append(utility_penalty(pnl, cfg.risk_aversion) / scale)
            sharpe.append(sharpe_penalty(pnl / scale, cfg.eps))
            drawdown.append(drawdown_penalty(pnl / scale))
            change = pos.diff(dim=-1).abs() if pos.shape[-1] > 1 else pos.new_zeros(pos.shape[:-1] + (1,))
            turnover.append(change.mean())
            mean_pnl.append(pnl.mean())
            cost.append(self.cost * change.sum() / pnl.numel())
        sharpe_t, drawdown_t = torch.stack(sharpe).mean(), torch.stack(drawdown).mean()
        utility_t = torch.stack(utility).mean()

        src = head if head is not None else out.source
        head_t = src.extra_loss(out, target) if src is not None else prediction.new_zeros(())

        total = (cfg.prediction_weight * prediction + cfg.utility_weight * utility_t
                 + cfg.sharpe_weight * sharpe_t + cfg.drawdown_weight * drawdown_t
                 + cfg.head_weight * head_t)
        return LossBreakdown(total=total, prediction=prediction, utility=utility_t, sharpe=sharpe_t,
                             drawdown=drawdown_t,
                             head=head_t, turnover=torch.stack(turnover).mean().detach(),
                             mean_pnl=torch.stack(mean_pnl).mean().detach(),
                             cost=torch.stack(cost).mean().detach())

    def _block_streams(self, position: torch.Tensor, target: torch.Tensor,
                       blocks: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, H] -> [K, L]`` first-step position / return streams, axis 1 consecutive in time."""
        if blocks is None:
            raise ValueError(
                f"CompositeTradingLoss(time_axis={self.cfg.time_axis!r}) needs blocks=<number of "
                "time-contiguous blocks in the batch>: the Sharpe and drawdown penalties run along "
                "time, so the batch must come from a time-contiguous sampler "
                "(TimeContiguousBatchSampler); use time_axis='horizon' otherwise")
        batch = position.shape[0]
        if not isinstance(blocks, (int, np.integer)) or blocks < 1 or batch % blocks:
            raise ValueError(f"blocks={blocks!r} must be a positive integer dividing the batch size {batch}")
        # Block-major layout: samples [k*L, (k+1)*L) are block k, in time order.
        return position[:, 0].reshape(blocks, -1), target[:, 0].reshape(blocks, -1)

    @staticmethod
    def _check(out: HeadOutput, target: torch.Tensor, time_axis: str) -> None:
        if target.ndim != 2 or out.position.shape != target.shape or out.expected_return.shape != target.shape:
            raise ValueError(
                f"target must be [B, H] future returns matching the head output; got target "
                f"{tuple(target.shape)}, position {tuple(out.position.shape)}, "
                f"expected_return {tuple(out.expected_return.shape)}")
        if target.shape[0] == 0:
            raise ValueError("CompositeTradingLoss got an empty batch (B = 0)")
        if time_axis in ("horizon", "both") and target.shape[1] < 2:
            raise ValueError(f"time_axis={time_axis!r} forms PnL streams along the horizon, which "
                             f"needs H >= 2 steps (got H = {target.shape[1]}); use time_axis='block'")
        if not torch.isfinite(target).all():
            bad = int((~torch.isfinite(target)).sum())
            raise ValueError(f"target holds {bad} non-finite value(s): future returns must be finite "
                             "(invalid windows should be dropped before the loss)")
