"""CompositeTradingLoss: hand values, time-axis semantics, costs, position sizing by the utility
term, gradients, and bad input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plusultra_core.errors import ConfigError
from plusultra_core.heads import HeadConfig, HeadOutput, build_head
from plusultra_core.losses import (CompositeTradingLoss, LossConfig, drawdown_penalty, pnl_stream,
                                   sharpe_penalty, utility_penalty)


def _out(position, expected=None) -> HeadOutput:
    position = torch.as_tensor(position, dtype=torch.float32)
    expected = torch.zeros_like(position) if expected is None else torch.as_tensor(expected, dtype=torch.float32)
    return HeadOutput(position=position, expected_return=expected)


@pytest.fixture(scope="module")
def sp500_returns() -> np.ndarray:
    """Real S&P 500 daily returns (the CSV shipped with ``arch``, read without importing arch)."""
    spec = importlib.util.find_spec("arch")
    if spec is None:
        pytest.skip("arch (demo extra) not installed")
    csv = Path(spec.submodule_search_locations[0]) / "data" / "sp500" / "sp500.csv.gz"
    return pd.read_csv(csv, index_col=0)["Adj Close"].pct_change().dropna().to_numpy()


def _horizon_targets(r: np.ndarray, start: int, batch: int, horizon: int) -> torch.Tensor:
    """[B, H] targets of B consecutive decision times: row t holds r[t+1 .. t+H]."""
    idx = start + np.arange(batch)[:, None] + np.arange(1, horizon + 1)[None, :]
    return torch.as_tensor(r[idx], dtype=torch.float32)


def test_pnl_stream_hand_values_torch_and_numpy():
    pos, ret = [1.0, 1.0, -1.0, 0.0], [0.01, -0.02, 0.03, 0.04]
    cost = 0.001
    flat_start = [0.01 - cost, -0.02, -0.03 - 2 * cost, 0.0 - cost]
    unknown_start = [0.01, -0.02, -0.03 - 2 * cost, 0.0 - cost]
    assert np.allclose(pnl_stream(np.array(pos), np.array(ret), cost), flat_start)
    assert np.allclose(pnl_stream(np.array(pos), np.array(ret), cost, initial_position=None), unknown_start)
    got = pnl_stream(torch.tensor([pos, pos]), torch.tensor([ret, ret]), cost, initial_position=None)
    assert got.shape == (2, 4) and torch.allclose(got, torch.tensor([unknown_start] * 2))
    with pytest.raises(ValueError, match="same shape"):
        pnl_stream(torch.zeros(3), torch.zeros(4), cost)


def test_sharpe_and_drawdown_penalties_hand_values():
    pnl = torch.tensor([[1.0, -2.0, 3.0, -1.0]])
    std = math.sqrt(np.var([1, -2, 3, -1], ddof=1))
    assert sharpe_penalty(pnl, eps=1e-12).item() == pytest.approx(-0.25 / std, rel=1e-5)
    # cumulative: 0, 1, -1, 2, 1 -> worst fall from peak 1 to -1 = 2
    assert drawdown_penalty(pnl).item() == pytest.approx(2.0)
    # a first-step loss counts (start at 0) and streams average
    assert drawdown_penalty(torch.tensor([[-1.0, 0.5], [1.0, 1.0]])).item() == pytest.approx(0.5)
    assert sharpe_penalty(torch.tensor([[5.0]]), eps=1e-6).item() == 0.0


def test_prediction_term_in_return_scale_units():
    target = torch.full((4, 2), 0.01)
    mse = CompositeTradingLoss(LossConfig(return_scale=0.01, time_axis="horizon"))(_out(torch.zeros(4, 2)), target)
    assert mse.prediction.item() == pytest.approx(1.0, rel=1e-5)
    huber = CompositeTradingLoss(LossConfig(prediction="huber", huber_delta=0.5, time_axis="horizon"))
    # |err| = 1 > delta: delta * (|e| - delta / 2) = 0.375
    assert huber(_out(torch.zeros(4, 2)), target).prediction.item() == pytest.approx(0.375, rel=1e-5)


def test_block_layout_matches_manual_stream_and_order_matters():
    cfg = LossConfig(cost_bps=10.0, time_axis="block", sharpe_weight=1.0, drawdown_weight=1.0)
    loss = CompositeTradingLoss(cfg)
    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(8, 3, generator=gen) * 2 - 1
    tgt = torch.randn(8, 3, generator=gen) * 0.01
    got = loss(_out(pos), tgt, blocks=2)
    # manual: blocks are rows [0:4] and [4:8], first horizon step only, in return_scale units
    pnl = pnl_stream(pos[:, 0].reshape(2, 4), tgt[:, 0].reshape(2, 4), 1e-3, initial_position=None) / 0.01
    assert got.sharpe.item() == pytest.approx(sharpe_penalty(pnl, 1e-6).item(), rel=1e-5)
    assert got.drawdown.item() == pytest.approx(drawdown_penalty(pnl).item(), rel=1e-5)
    # reversing time inside each block leaves the prediction term alone but changes the
    # path-dependent drawdown: proof that it runs along time, not over an unordered batch
    rev = torch.cat([torch.arange(3, -1, -1), torch.arange(7, 3, -1)])
    flipped = loss(_out(pos[rev]), tgt[rev], blocks=2)
    assert flipped.prediction.item() == pytest.approx(got.prediction.item())
    assert flipped.drawdown.item() != pytest.approx(got.drawdown.item(), rel=1e-3)


@pytest.mark.parametrize("weights", ["defaults", "heavy_sharpe_drawdown"])
@pytest.mark.parametrize("time_axis", ["block", "horizon", "both"])
def test_perfect_foresight_beats_random_and_always_long(sp500_returns, time_axis, weights):
    r = sp500_returns
    extra = {} if weights == "defaults" else {"sharpe_weight": 1.0, "drawdown_weight": 1.0}
    loss = CompositeTradingLoss(LossConfig(time_axis=time_axis, **extra))
    for seed in range(5):
        rng = np.random.default_rng(seed)
        start = int(rng.integers(0, r.size - 600))
        target = _horizon_targets(r, start, batch=512, horizon=5)           # 4 blocks x 128 days
        perfect = loss(_out(torch.sign(target)), target, blocks=4)
        rand = loss(_out(torch.as_tensor(rng.uniform(-1, 1, target.shape), dtype=torch.float32)), target, blocks=4)
        long = loss(_out(torch.ones_like(target)), target, blocks=4)
        assert perfect.total < rand.total and perfect.total < long.total, (seed, start)
        assert perfect.sharpe < long.sharpe and perfect.drawdown <= long.drawdown
        assert perfect.mean_pnl > long.mean_pnl and perfect.utility < long.utility


def test_costs_rise_with_turnover_and_cost_bps():
    ret = torch.full((1, 16), 0.001)
    steady = torch.ones(1, 16)
    flip = torch.tensor([[1.0, -1.0] * 8])
    cost = 5e-4
    steady_cost = (steady * ret - pnl_stream(steady, ret, cost)).sum()
    flip_cost = (flip * ret - pnl_stream(flip, ret, cost)).sum()
    assert flip_cost.item() == pytest.approx(cost * (1 + 15 * 2), rel=1e-5)
    assert steady_cost.item() == pytest.approx(cost * 1, rel=1e-5)
    # through the loss: same returns, the flip-flopping stream pays more and scores worse
    target = ret.T.repeat(1, 2)                                             # [16, 2]
    flip_pos, steady_pos = flip.T.repeat(1, 2), steady.T.repeat(1, 2)
    loss = CompositeTradingLoss(LossConfig(cost_bps=5.0))
    lf, ls = loss(_out(flip_pos), target, blocks=1), loss(_out(steady_pos), target, blocks=1)
    assert lf.cost > ls.cost and lf.turnover.item() == pytest.approx(2.0) and ls.turnover.item() == 0.0
    assert lf.total > ls.total
    # and the total rises with cost_bps for the same positions and returns
    gen = torch.Generator().manual_seed(1)
    pos, tgt = torch.rand(32, 4, generator=gen) * 2 - 1, torch.randn(32, 4, generator=gen) * 0.01
    totals = [CompositeTradingLoss(LossConfig(cost_bps=c, time_axis="both"))(_out(pos), tgt, blocks=2).total.item()
              for c in (0.0, 5.0, 20.0, 100.0)]
    assert all(a < b for a, b in zip(totals, totals[1:]))


@pytest.mark.parametrize("time_axis", ["block", "horizon", "both"])
@pytest.mark.parametrize("case", ["zero_positions", "constant_pnl", "tiny_batch", "single_sample", "random"])
def test_gradients_finite(time_axis, case):
    H = 3
    if case == "zero_positions":
        pos, tgt, blocks = torch.zeros(8, H), torch.randn(8, H) * 0.01, 2
    elif case == "constant_pnl":
        pos, tgt, blocks = torch.ones(8, H), torch.full((8, H), 0.01), 2
    elif case == "tiny_batch":
        pos, tgt, blocks = torch.rand(2, H), torch.randn(2, H) * 0.01, 1
    elif case == "single_sample":
        pos, tgt, blocks = torch.rand(1, H), torch.randn(1, H) * 0.01, 1
    else:
        pos, tgt, blocks = torch.rand(16, H) * 2 - 1, torch.randn(16, H) * 0.01, 4
    pos = pos.clone().requires_grad_(True)
    exp = torch.zeros_like(pos, requires_grad=True)
    parts = CompositeTradingLoss(LossConfig(time_axis=time_axis))(
        HeadOutput(position=pos, expected_return=exp), tgt, blocks=blocks)
    parts.total.backward()
    assert torch.isfinite(parts.total) and torch.isfinite(pos.grad).all() and torch.isfinite(exp.grad).all()
    for name, value in parts.to_dict().items():
        assert math.isfinite(value), name


@pytest.mark.parametrize("kind", ["policy", "regression", "quantile"])
def test_head_term_and_backprop_through_real_heads(kind):
    torch.manual_seed(0)
    head = build_head(HeadConfig(kind=kind, ce_weight=0.3), 8)
    h = torch.randn(12, 2, 8, requires_grad=True)
    tgt = torch.randn(12, 2) * 0.01
    out = head(h)
    parts = CompositeTradingLoss(LossConfig(time_axis="both", head_weight=2.0))(out, tgt, blocks=3)
    assert parts.head.item() == pytest.approx(head.extra_loss(out, tgt).item())
    assert (parts.head.item() > 0) == (kind != "regression")
    parts.total.backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and torch.isfinite(h.grad).all()
    # an explicit head= overrides; a hand-built output without a source gets no head term
    bare = HeadOutput(position=out.position.detach(), expected_return=out.expected_return.detach(),
                      quantiles=out.quantiles, logits=out.logits)
    loss = CompositeTradingLoss(LossConfig(time_axis="horizon"))
    assert loss(bare, tgt).head.item() == 0.0
    assert loss(bare, tgt, head=head).head.item() == pytest.approx(head.extra_loss(bare, tgt).item())


def test_bad_input_errors():
    block = CompositeTradingLoss(LossConfig(time_axis="block"))
    out, tgt = _out(torch.zeros(6, 2)), torch.zeros(6, 2)
    with pytest.raises(ValueError, match="time-contiguous sampler"):
        block(out, tgt)
    with pytest.raises(ValueError, match="time-contiguous sampler"):
        CompositeTradingLoss(LossConfig(time_axis="both"))(out, tgt)
    with pytest.raises(ValueError, match="dividing the batch size 6"):
        block(out, tgt, blocks=4)
    with pytest.raises(ValueError, match=r"target must be \[B, H\]"):
        block(out, tgt[:, :1], blocks=2)
    with pytest.raises(ValueError, match="non-finite"):
        block(out, torch.tensor([[0.0, float("nan")]] * 6), blocks=2)
    with pytest.raises(ValueError, match="H >= 2"):
        CompositeTradingLoss(LossConfig(time_axis="horizon"))(_out(torch.zeros(6, 1)), torch.zeros(6, 1))
    # horizon streams need no blocks
    CompositeTradingLoss(LossConfig(time_axis="horizon"))(out, tgt)
    with pytest.raises(ConfigError, match="time_axis"):
        LossConfig(time_axis="batch")
    with pytest.raises(ConfigError, match="cost_bps"):
        LossConfig(cost_bps=-1.0)
    with pytest.raises(ConfigError, match="return_scale"):
        LossConfig(return_scale=0.0)
    with pytest.raises(ConfigError, match="utility_weight"):
        LossConfig(utility_weight=-0.5)
    with pytest.raises(ConfigError, match="risk_aversion"):
        LossConfig(risk_aversion=float("nan"))


# ----------------------------------------------------------------------------- utility / sizing
def _utility_only(**kw) -> CompositeTradingLoss:
    """A loss whose only term is the mean-variance utility."""
    return CompositeTradingLoss(LossConfig(prediction_weight=0.0, sharpe_weight=0.0, drawdown_weight=0.0,
                                           head_weight=0.0, utility_weight=1.0, **kw))


def _scaled_loss(loss, signal: torch.Tensor, target: torch.Tensor, c: float, blocks: int):
    """(loss, d loss / d c) for positions ``c * signal``."""
    scale = torch.tensor(c, requires_grad=True)
    out = HeadOutput(position=scale * signal, expected_return=torch.zeros_like(target))
    parts = loss(out, target, blocks=blocks)
    parts.total.backward()
    return parts.total.item(), scale.grad.item()


def test_utility_hand_value_and_zero_weight_is_the_old_loss():
    pnl = torch.tensor([[0.01, -0.02, 0.03], [0.0, 0.01, 0.02]])
    mean, var = pnl.mean(-1), pnl.var(-1, correction=0)
    assert utility_penalty(pnl, 4.0).item() == pytest.approx(-(mean - 2.0 * var).mean().item(), rel=1e-6)
    assert utility_penalty(torch.tensor([[0.02]]), 4.0).item() == pytest.approx(-0.02)  # T = 1: mean only
    # through the loss: block streams, divided by return_scale
    gen = torch.Generator().manual_seed(3)
    pos, tgt = torch.rand(8, 2, generator=gen) * 2 - 1, torch.randn(8, 2, generator=gen) * 0.01
    cfg = dict(cost_bps=10.0, return_scale=0.02, risk_aversion=7.0)
    got = CompositeTradingLoss(LossConfig(**cfg))(_out(pos), tgt, blocks=2)
    manual = pnl_stream(pos[:, 0].reshape(2, 4), tgt[:, 0].reshape(2, 4), 1e-3, initial_position=None)
    assert got.utility.item() == pytest.approx(utility_penalty(manual, 7.0).item() / 0.02, rel=1e-5)
    # utility_weight = 0 gives back exactly the pre-utility total
    old = CompositeTradingLoss(LossConfig(utility_weight=0.0, **cfg))(_out(pos), tgt, blocks=2)
    expect = old.prediction + 0.1 * old.sharpe + 0.1 * old.drawdown + old.head
    assert old.total.item() == pytest.approx(expect.item(), rel=1e-6)
    weight = LossConfig().utility_weight
    assert weight > 0                                   # on by default: it is what sizes positions
    assert got.total.item() == pytest.approx(old.total.item() + weight * got.utility.item(), rel=1e-6)


@pytest.mark.parametrize("time_axis", ["block", "horizon", "both"])
def test_utility_gradient_grows_a_small_position_and_shrinks_a_large_one(time_axis):
    """Constant long on returns with a positive edge: c* = mu / (gamma * s2) sits inside (0, 1)."""
    rng = np.random.default_rng(0)
    target = torch.as_tensor(0.0005 + 0.01 * rng.standard_normal((256, 4)), dtype=torch.float32)
    mu, s2 = target.mean().item(), target.var(correction=0).item()
    gamma = mu / (0.5 * s2)                                                # analytic optimum near 0.5
    loss = _utility_only(risk_aversion=gamma, time_axis=time_axis)
    ones = torch.ones_like(target)
    _, small = _scaled_loss(loss, ones, target, 0.1, blocks=4)
    _, large = _scaled_loss(loss, ones, target, 0.95, blocks=4)
    assert small < 0 < large, (small, large)        # descent raises 0.1 and lowers 0.95
    # a flat position is never a stationary point when there is an edge (the Sharpe term's
    # scale-invariance left the size free; this term does not)
    _, flat = _scaled_loss(loss, ones, target, 0.0, blocks=4)
    assert flat < 0
    # and with the edge reversed the gradient pushes a flat position short
    _, flat_neg = _scaled_loss(loss, ones, -target, 0.0, blocks=4)
    assert flat_neg > 0


def _ar1(n: int, phi: float, sigma: float, rng) -> np.ndarray:
    """[blocks, n] AR(1) returns, started from the stationary distribution."""
    eps = rng.standard_normal((4, n)) * sigma
    r = np.empty_like(eps)
    r[:, 0] = eps[:, 0] / math.sqrt(1 - phi ** 2)
    for t in range(1, n):  # sequential recursion, test data only
        r[:, t] = phi * r[:, t - 1] + eps[:, t]
    return r


def test_utility_optimal_scale_matches_the_analytic_optimum_on_ar1():
    """Position c * sign(r_{t-1}) on an AR(1): the grid minimum of the utility-only loss sits at
    Merton's fraction c* = mu / (gamma * s2) computed from the AR(1)'s population moments."""
    phi, sigma, n = 0.3, 0.01, 4000
    r = _ar1(n + 1, phi, sigma, np.random.default_rng(1))                  # [4, n+1]
    signal = torch.as_tensor(np.sign(r[:, :-1]), dtype=torch.float32).reshape(-1, 1)   # known at t-1
    target = torch.as_tensor(r[:, 1:], dtype=torch.float32).reshape(-1, 1)            # earned at t
    sd = sigma / math.sqrt(1 - phi ** 2)
    mu = phi * sd * math.sqrt(2 / math.pi)                                 # E[sign(r_{t-1}) r_t]
    s2 = sd ** 2 * (1 - 2 * phi ** 2 / math.pi)                            # Var[sign(r_{t-1}) r_t]
    gamma = mu / (0.6 * s2)                                                # c* = 0.6 by construction
    loss = _utility_only(risk_aversion=gamma, cost_bps=0.0)
    grid = np.linspace(0.0, 1.0, 101)
    values = np.array([_scaled_loss(loss, signal, target, float(c), blocks=4)[0] for c in grid])
    best = grid[np.argmin(values)]
    assert best == pytest.approx(0.6, abs=0.06), best                      # sampling error ~4 %
    assert values[np.argmin(values)] < values[0] and values[np.argmin(values)] < values[-1]
    # transaction costs eat into the edge: each sign flip of r costs 2c * cost, and r flips sign
    # with probability 1/2 - asin(phi)/pi, so the net edge and the optimal size shrink by that
    # (the cost's effect on the variance is second order)
    cost = 5e-4
    costly = _utility_only(risk_aversion=gamma, cost_bps=cost * 1e4)
    costly_values = np.array([_scaled_loss(costly, signal, target, float(c), blocks=4)[0] for c in grid])
    net = mu - 2 * cost * (0.5 - math.asin(phi) / math.pi)
    costly_best = grid[np.argmin(costly_values)]
    assert costly_best == pytest.approx(0.6 * net / mu, abs=0.06), costly_best
    assert costly_best < best
