"""Heads: shapes, position range, quantile monotonicity, pinball loss and config validation."""

from __future__ import annotations

import math

import pytest
import torch

from plusultra_core.config import from_dict
from plusultra_core.errors import ConfigError
from plusultra_core.heads import (HeadConfig, HeadOutput, QuantileHead, RegressionHead,
                                  TemporalPolicyHead, build_head, pinball_loss, sign_labels)

B, H, D = 6, 4, 16


def _perturb(head: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Heads start neutral (zero last layer); randomise weights so outputs are not trivially 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 3.0)
    return head


@pytest.mark.parametrize("kind,cls", [("policy", TemporalPolicyHead), ("regression", RegressionHead),
                                      ("quantile", QuantileHead)])
def test_shapes_and_position_range(kind, cls):
    head = build_head(HeadConfig(kind=kind, hidden_mult=2), D)
    assert isinstance(head, cls)
    # a fresh head is neutral: flat position, zero forecast
    fresh = head(torch.randn(B, H, D))
    assert torch.allclose(fresh.position, torch.zeros(B, H), atol=1e-7)
    assert torch.allclose(fresh.expected_return, torch.zeros(B, H), atol=1e-7)
    _perturb(head)
    h = torch.randn(B, H, D, requires_grad=True) * 10
    out = head(h)
    assert out.position.shape == (B, H) and out.expected_return.shape == (B, H)
    assert out.position.abs().max() <= 1.0 and out.position.abs().max() > 0.05
    assert out.source is head
    if kind == "policy":
        assert out.probs.shape == (B, H, 3) and out.logits.shape == (B, H, 3)
        assert torch.allclose(out.probs.sum(-1), torch.ones(B, H), atol=1e-6)
        assert torch.allclose(out.position, out.probs[..., 2] - out.probs[..., 0])
    else:
        assert out.probs is None
    if kind == "quantile":
        assert out.quantiles.shape == (B, H, 5)
        assert torch.equal(out.expected_return, out.quantiles[..., 2])
    (out.position.sum() + out.expected_return.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_quantiles_strictly_monotone_even_for_extreme_inputs():
    head = _perturb(build_head(HeadConfig(kind="quantile", quantiles=(0.1, 0.5, 0.9)), D), seed=3)
    out = head(torch.randn(64, H, D) * 100)
    assert (out.quantiles.diff(dim=-1) > 0).all()


def test_regression_position_is_tanh_of_scaled_forecast():
    cfg = HeadConfig(kind="regression", position_temperature=0.5, return_scale=0.02, learn_temperature=False)
    head = _perturb(build_head(cfg, D))
    out = head(torch.randn(B, H, D))
    assert torch.allclose(out.position, torch.tanh(out.expected_return / (0.02 * 0.5)), atol=1e-6)
    assert not any(n.endswith("log_t") for n, _ in head.named_parameters())


def test_pinball_loss_hand_values():
    q = torch.tensor([[[-1.0, 0.0, 1.0]]])          # [1, 1, 3]
    levels = (0.1, 0.5, 0.9)
    # target 0.5: errors e = 1.5, 0.5, -0.5 -> 0.1*1.5, 0.5*0.5, (0.9-1)*(-0.5)
    expected = (0.15 + 0.25 + 0.05) / 3
    assert pinball_loss(q, torch.tensor([[0.5]]), levels).item() == pytest.approx(expected)
    # target -2: e = -1, -2, -3 -> 0.9*1, 0.5*2, 0.1*3
    assert pinball_loss(q, torch.tensor([[-2.0]]), levels).item() == pytest.approx((0.9 + 1.0 + 0.3) / 3)
    with pytest.raises(ValueError, match="levels"):
        pinball_loss(q, torch.tensor([[0.5]]), (0.5, 0.9))


def test_quantile_extra_loss_is_weighted_normalised_pinball():
    cfg = HeadConfig(kind="quantile", pinball_weight=2.0, return_scale=0.01)
    head = _perturb(build_head(cfg, D))
    out = head(torch.randn(B, H, D))
    target = torch.randn(B, H) * 0.01
    expected = 2.0 * pinball_loss(out.quantiles, target, cfg.quantiles) / 0.01
    assert torch.allclose(head.extra_loss(out, target), expected)


def test_policy_cross_entropy_on_sign():
    target = torch.tensor([[0.02, -0.01, 0.0005, -0.03]])
    assert sign_labels(target).tolist() == [[2, 0, 2, 0]]
    assert sign_labels(target, hold_band=0.001).tolist() == [[2, 0, 1, 0]]
    off = build_head(HeadConfig(kind="policy"), D)
    out = off(torch.randn(1, 4, D))
    assert off.extra_loss(out, target).item() == 0.0
    head = build_head(HeadConfig(kind="policy", ce_weight=0.5), D)
    out = head(torch.randn(1, 4, D))
    # fresh head: uniform probabilities -> CE = log 3
    assert head.extra_loss(out, target).item() == pytest.approx(0.5 * math.log(3.0), rel=1e-5)
    # logits that agree with the labels score lower than logits that contradict them
    good = torch.tensor([[[-3.0, 0, 3], [3, 0, -3], [-3, 0, 3], [3, 0, -3]]])
    agree = HeadOutput(position=torch.zeros(1, 4), expected_return=torch.zeros(1, 4), logits=good)
    disagree = HeadOutput(position=torch.zeros(1, 4), expected_return=torch.zeros(1, 4), logits=-good)
    assert head.extra_loss(agree, target) < head.extra_loss(disagree, target)
    with pytest.raises(ValueError, match="target shape"):
        head.extra_loss(out, target[:, :2])


def test_bad_input_and_config_errors_are_clear():
    head = build_head(HeadConfig(), D)
    with pytest.raises(ValueError, match=r"\[B, H, 16\]"):
        head(torch.randn(B, H, D + 1))
    with pytest.raises(ConfigError, match="kind"):
        HeadConfig(kind="softmax")
    with pytest.raises(ConfigError, match="median"):
        HeadConfig(kind="quantile", quantiles=(0.1, 0.9))
    with pytest.raises(ConfigError, match="strictly increasing"):
        HeadConfig(kind="quantile", quantiles=(0.5, 0.25, 0.75))
    with pytest.raises(ConfigError, match="dropout"):
        HeadConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="d_model"):
        build_head(HeadConfig(), 0)
    # YAML lists become tuples; unknown keys are named
    cfg = from_dict(HeadConfig, {"kind": "quantile", "quantiles": [0.25, 0.5, 0.75]})
    assert cfg.quantiles == (0.25, 0.5, 0.75)
    with pytest.raises(ConfigError, match="tempreature"):
        from_dict(HeadConfig, {"tempreature": 1.0})
