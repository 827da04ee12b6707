"""State-space scan, mixture of experts, coarse pooling and the omni_mixture / moe_transformer backbones.

References are computed the slow obvious way (step-by-step recurrence, every expert on every
token) and compared with the vectorised code.
"""

from __future__ import annotations

import math

import pytest
import torch

from plusultra_core.errors import ConfigError
from plusultra_core.layers.moe import MixtureOfExperts
from plusultra_core.layers.pooling import LearnablePooling, coarse_causal_mask, group_ends
from plusultra_core.layers.ssm import DiagonalSSM, linear_scan, naive_scan
from plusultra_core.models import registry

# ----------------------------------------------------------------------------- scan


@pytest.mark.parametrize("T, chunk", [(1, 4), (7, 4), (16, 16), (17, 16), (100, 8), (256, 16), (255, 4)])
def test_scan_matches_naive_recurrence_real(T, chunk):
    g = torch.Generator().manual_seed(T)
    a = torch.rand(3, T, 4, 2, generator=g)                # a in (0, 1)
    b = torch.randn(3, T, 4, 2, generator=g)
    h0 = torch.randn(3, 4, 2, generator=g)
    torch.testing.assert_close(linear_scan(a, b, chunk=chunk), naive_scan(a, b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(linear_scan(a, b, h0, chunk=chunk), naive_scan(a, b, h0),
                               atol=1e-5, rtol=1e-5)


def test_scan_matches_naive_recurrence_complex_and_broadcast_a():
    g = torch.Generator().manual_seed(0)
    T = 77                                                 # not a multiple of the chunk
    mag = torch.rand(2, T, 3, generator=g)
    a = torch.polar(mag, torch.randn(2, T, 3, generator=g) * 3)          # |a| < 1, rotating
    b = torch.complex(torch.randn(2, T, 3, generator=g), torch.randn(2, T, 3, generator=g))
    torch.testing.assert_close(linear_scan(a, b, chunk=8), naive_scan(a, b), atol=1e-5, rtol=1e-5)
    a_const = torch.rand(1, 1, 3, generator=g)             # time-invariant decay, broadcast
    b_real = torch.randn(2, T, 3, generator=g)
    torch.testing.assert_close(linear_scan(a_const, b_real, chunk=8), naive_scan(a_const, b_real),
                               atol=1e-5, rtol=1e-5)


def test_scan_stable_for_long_sequences_with_strong_decay():
    # cumulative products underflow to 0 long before T=512: the scan must stay finite and exact
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 512, 8, generator=g) * 0.2
    b = torch.randn(2, 512, 8, generator=g) * 1e3
    h = linear_scan(a, b, chunk=16)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, naive_scan(a, b), atol=1e-2, rtol=1e-5)


def test_scan_gradients_match_autograd_of_naive_and_gradcheck():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(1, 11, 2, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(1, 11, 2, dtype=torch.float64, generator=g).requires_grad_()
    h0 = torch.randn(1, 2, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, chunk=4), (a, b, h0))
    ac = torch.polar(torch.rand(1, 9, 2, dtype=torch.float64, generator=g),
                     torch.randn(1, 9, 2, dtype=torch.float64, generator=g)).requires_grad_()
    bc = torch.randn(1, 9, 2, dtype=torch.complex128, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b, chunk=4), (ac, bc))


@pytest.mark.parametrize("T, chunk", [(100, 4), (33, 8)])
def test_scan_backward_equals_autograd_through_naive_recurrence(T, chunk):
    # long enough that the reverse scan of the backward pass pads and recurses over chunks
    g = torch.Generator().manual_seed(T)
    a = torch.rand(2, T, 3, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(2, T, 3, dtype=torch.float64, generator=g).requires_grad_()
    w = torch.randn(2, T, 3, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad((linear_scan(a, b, chunk=chunk) * w).sum(), (a, b))
    ref = torch.autograd.grad((naive_scan(a, b) * w).sum(), (a, b))
    for got, want in zip(grads, ref):
        torch.testing.assert_close(got, want)


def test_scan_gradient_finite_at_length_512():
    a = torch.rand(2, 512, 4).requires_grad_()
    b = torch.randn(2, 512, 4).requires_grad_()
    linear_scan(a, b).square().sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert a.grad.abs().sum() > 0


def test_scan_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\]"):
        linear_scan(torch.rand(5), torch.rand(5))
    with pytest.raises(ValueError, match="chunk"):
        linear_scan(torch.rand(1, 5), torch.rand(1, 5), chunk=1)


@pytest.mark.parametrize("init, selective", [("real", True), ("lin", True), ("real", False), ("lin", False)])
def test_ssm_mixer_is_causal_and_differentiable(init, selective):
    torch.manual_seed(0)
    m = DiagonalSSM(8, 4, init=init, selective=selective, chunk=4)
    x = torch.randn(2, 21, 8)
    x2 = x.clone()
    x2[:, 13:] += 1.0
    y, y2 = m(x), m(x2)
    torch.testing.assert_close(y[:, :13], y2[:, :13])
    assert not torch.allclose(y[:, 13:], y2[:, 13:])
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_ssm_mixer_rejects_bad_init():
    with pytest.raises(ValueError, match="init"):
        DiagonalSSM(8, 4, init="bogus")

# ----------------------------------------------------------------------------- mixture of experts


def _reference_moe(moe: MixtureOfExperts, x: torch.Tensor):
    """Every expert on every token by hand, then each token keeps its renormalised top-k."""
    xf = x.reshape(-1, x.shape[-1])
    probs = moe.router(xf).softmax(-1)
    dense = torch.stack([moe.expert(e, xf) for e in range(moe.num_experts)], dim=1)   # [N, E, D]
    out = torch.zeros_like(xf)
    counts = torch.zeros(moe.num_experts)
    for n in range(xf.shape[0]):
        top = torch.topk(probs[n], moe.top_k).indices
        w = probs[n, top] / probs[n, top].sum()
        out[n] = (w[:, None] * dense[n, top]).sum(0)
        counts[top] += 1
    frac = counts / (xf.shape[0] * moe.top_k)
    aux = moe.num_experts * (frac * probs.mean(0)).sum()
    return out.reshape(x.shape), aux, probs, dense


@pytest.mark.parametrize("num_experts, top_k", [(4, 1), (4, 2), (6, 3)])
def test_sparse_moe_equals_weighted_top_k_experts(num_experts, top_k):
    torch.manual_seed(num_experts + top_k)
    moe = MixtureOfExperts(8, num_experts, top_k, ff_mult=2).eval()
    x = torch.randn(3, 5, 8)
    y, aux = moe(x)
    ref, ref_aux, _, _ = _reference_moe(moe, x)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(aux, ref_aux)
    assert moe.last_rows_processed == 15 * top_k
    torch.testing.assert_close(moe.last_load.sum(), torch.tensor(1.0))


def test_aux_loss_is_one_for_uniform_routing_and_larger_when_collapsed():
    moe = MixtureOfExperts(4, 4, 1)
    with torch.no_grad():
        moe.router.weight.zero_()          # all probabilities 1/E; top-1 ties go to expert 0
    _, aux = moe(torch.randn(10, 4))
    # uniform probabilities: P_i = 1/4, so E * sum f_i P_i = 1 whatever f is (here ties -> expert 0)
    torch.testing.assert_close(aux, torch.tensor(1.0))
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 50.0
    _, aux_collapsed = moe(torch.full((10, 4), 1.0))      # f_0 = 1 and P_0 ~ 1 -> E * 1 = 4
    assert aux_collapsed > 3.9


def test_dense_routing_mixes_all_experts_by_softmax():
    torch.manual_seed(1)
    moe = MixtureOfExperts(8, 4, 2, ff_mult=2, routing="dense", z_loss_weight=1e-2).eval()
    x = torch.randn(2, 6, 8)
    y, aux = moe(x)
    _, _, probs, dense = _reference_moe(moe, x)
    ref = (probs[:, :, None] * dense).sum(1).reshape(x.shape)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    logits = moe.router(x.reshape(-1, 8))
    torch.testing.assert_close(aux, 1e-2 * torch.logsumexp(logits, -1).square().mean())
    assert moe.last_rows_processed == 12 * 4


def test_sparse_expert_compute_does_not_grow_with_num_experts():
    x = torch.randn(4, 32, 16)
    rows = {}
    for E in (4, 8, 16):
        torch.manual_seed(E)
        moe = MixtureOfExperts(16, E, top_k=2)
        y, aux = moe(x)
        (y.sum() + aux).backward()
        rows[E] = moe.last_rows_processed
        # every expert that received tokens gets a gradient, the router does too
        assert moe.router.weight.grad.abs().sum() > 0
    assert rows == {4: 4 * 32 * 2, 8: 4 * 32 * 2, 16: 4 * 32 * 2}


def test_capacity_factor_drops_overflow_and_counts_it():
    moe = MixtureOfExperts(4, 4, 1, capacity_factor=1.0)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 50.0     # every token wants expert 0; capacity is 16/4 = 4
    y, _ = moe(torch.full((16, 4), 1.0))
    assert moe.last_rows_processed == 4 and moe.last_dropped == 12
    assert (y[4:] == 0).all() and (y[:4] != 0).any()


@pytest.mark.parametrize("kwargs, match", [
    ({"routing": "soft"}, "routing"), ({"top_k": 5}, "top_k"), ({"capacity_factor": 0}, "capacity_factor")])
def test_moe_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureOfExperts(8, **{"num_experts": 4, **kwargs})

# ----------------------------------------------------------------------------- pooling / omni


def test_pooling_groups_end_aligned_and_use_only_their_steps():
    assert group_ends(10, 4).tolist() == [1, 5, 9]
    mask = coarse_causal_mask(10, 4)
    assert mask.shape == (10, 4) and mask[:, 0].all()      # null token always visible
    assert mask[1, 1] and not mask[0, 1] and not mask[8, 3] and mask[9, 3]
    torch.manual_seed(0)
    pool = LearnablePooling(6, 4)
    x = torch.randn(2, 10, 6)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 4, 6)                       # only group 2 (steps 6..9) changes
    a, b = pool(x), pool(x2)
    assert a.shape == (2, 3, 6)
    torch.testing.assert_close(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2], b[:, 2])


def _omni(**overrides):
    base = {"d_model": 16, "n_heads": 2, "n_layers": 4, "ssm_state_dim": 4, "coarse_factor": 3,
            "cross_every": 1, "max_len": 64, "dropout": 0.0}
    cfg = registry.load_model_config("omni_mixture", overrides={**base, **overrides})
    torch.manual_seed(0)
    return registry.build_backbone("omni_mixture", cfg, n_features=5, horizon=2).eval()


@pytest.mark.parametrize("T, t", [(20, 11), (20, 1), (23, 21), (9, 0)])
def test_omni_mixture_steps_are_causal_across_coarse_groups(T, t):
    model = _omni()
    x = torch.randn(2, T, 5)
    x2 = x.clone()
    x2[:, t] += 3.0                                         # change one step only
    with torch.no_grad():
        a, b = model(x).steps, model(x2).steps
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, t:], b[:, t:], atol=1e-4)


def test_omni_mixture_non_causal_mode_sees_the_future():
    model = _omni(causal=False)
    x = torch.randn(2, 20, 5)
    x2 = x.clone()
    x2[:, 15:] += 3.0
    with torch.no_grad():
        a, b = model(x).steps, model(x2).steps
    assert not torch.allclose(a[:, :15], b[:, :15], atol=1e-4)


def test_omni_mixture_complex_time_invariant_ssm_builds_and_trains():
    model = _omni(ssm_init="lin", ssm_selective=False).train()
    out = model(torch.randn(2, 17, 5))
    (out.steps.square().mean() + out.horizon.square().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name, bad, key", [
    ("omni_mixture", {"ssm_init": "complex"}, "ssm_init"),
    ("omni_mixture", {"coarse_factor": 0}, "coarse_factor"),
    ("omni_mixture", {"n_heads": 3}, "n_heads"),
    ("moe_transformer", {"top_k": 9}, "top_k"),
    ("moe_transformer", {"routing": "soft"}, "routing"),
    ("moe_transformer", {"patch_len": 2, "patch_stride": 3}, "patch_stride"),
])
def test_invalid_values_raise_config_error_naming_key_and_file(name, bad, key):
    with pytest.raises(ConfigError) as err:
        registry.load_model_config(name, overrides=bad)
    assert key in str(err.value) and f"{name}.yaml" in str(err.value)


def test_omni_mixture_rejects_too_long_context():
    with pytest.raises(ConfigError, match="max_len=64"):
        _omni()(torch.randn(1, 65, 5))

# ----------------------------------------------------------------------------- moe transformer


def test_moe_transformer_aux_loss_is_weighted_sum_of_layer_losses():
    cfg = registry.load_model_config("moe_transformer", overrides={
        "d_model": 16, "n_heads": 2, "n_layers": 3, "num_experts": 4, "top_k": 2, "max_len": 64,
        "dropout": 0.0, "aux_loss_weight": 0.5})
    torch.manual_seed(0)
    model = registry.build_backbone("moe_transformer", cfg, n_features=5, horizon=2)
    out = model(torch.randn(3, 24, 5))
    layer_losses = torch.stack([b.moe.last_aux_loss for b in model.blocks])
    torch.testing.assert_close(out.aux_loss.detach(), 0.5 * layer_losses.sum())
    assert (layer_losses > 0).all()
    assert out.aux_loss.requires_grad
    load = model.expert_load()
    assert load.shape == (3, 4)
    torch.testing.assert_close(load.sum(-1), torch.ones(3))
    # the router learns from the aux loss alone
    out.aux_loss.backward()
    assert model.blocks[0].moe.router.weight.grad.abs().sum() > 0
    assert math.isfinite(out.aux_loss.item())
