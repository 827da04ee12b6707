"""Shared layers: patching covers every step and aligns tokens, dilated conv is causal, VSN weights."""

from __future__ import annotations

import pytest
import torch

from plusultra_core.layers.conv import DilatedTemporalConv
from plusultra_core.layers.feedforward import ResidualFeedForward
from plusultra_core.layers.gating import GatedResidualNetwork, GroupedLinear, VariableSelectionNetwork
from plusultra_core.layers.horizon import HorizonDecoder
from plusultra_core.layers.patch import PatchEmbedding

PATCH_SHAPES = [(4, 2), (4, 4), (3, 1), (5, 3), (1, 1)]



@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("P, S", PATCH_SHAPES)
def test_patching_covers_every_step(P, S, causal):
    torch.manual_seed(0)
    pe = PatchEmbedding(3, 8, P, S, "patch", causal=causal)
    for T in (1, 2, P, P + 1, 17, 32):
        x = torch.randn(2, T, 3, requires_grad=True)
        tokens = pe(x)
        assert tokens.shape == (2, pe.plan(T)[0], 8)
        tokens.sum().backward()
        # every input bar reaches some token
        assert (x.grad.abs().sum(-1) > 0).all(), f"uncovered input steps for T={T}"
        # the newest token is built from the newest bar
        g, = torch.autograd.grad(pe(x)[:, -1].sum(), x)
        assert (g[:, -1].abs().sum(-1) > 0).all()
        # every step receives a token on the way back (skip path off)
        with torch.no_grad():
            pe.step_skip.weight.zero_(); pe.step_skip.bias.zero_()
            steps = pe.to_steps(torch.randn_like(tokens), x)
        assert steps.shape == (2, T, 8)
        assert torch.isfinite(steps).all() and (steps.abs().sum(-1) > 0).all()


@pytest.mark.parametrize("causal", [True, False])
def test_tokens_return_to_the_right_steps(causal):
    """Non-causal: a token lands on the steps it covers. Causal: on the P steps from its last bar."""
    P, S, T = 4, 2, 10
    pe = PatchEmbedding(1, 2, P, S, "patch", causal=causal)
    with torch.no_grad():
        pe.unproject.bias.zero_(); pe.step_skip.weight.zero_(); pe.step_skip.bias.zero_()
    x = torch.zeros(1, T, 1)
    n, pad = pe.plan(T)
    for k in range(n):
        tokens = torch.zeros(1, n, 2)
        tokens[0, k] = 1.0
        hit = (pe.to_steps(tokens, x)[0].abs().sum(-1) > 0).nonzero().flatten().tolist()
        start = k * S - pad + (P - 1 if causal else 0)    # first real step the token lands on
        expected = [t for t in range(start, start + P) if 0 <= t < T]
        assert hit == expected, (k, hit, expected)


@pytest.mark.parametrize("causal", [True, False])
def test_step_token_mode_keeps_length(causal):
    pe = PatchEmbedding(3, 8, 5, 1, "step", causal=causal)
    x = torch.randn(2, 11, 3)
    tokens = pe(x)
    assert tokens.shape == (2, 11, 8) and pe.to_steps(tokens, x) is tokens


def test_patch_embedding_rejects_bad_shapes():
    with pytest.raises(ValueError, match="patch_stride"):
        PatchEmbedding(3, 8, 4, 5)
    with pytest.raises(ValueError, match="token_mode"):
        PatchEmbedding(3, 8, 4, 2, "bars")


@pytest.mark.parametrize("k, d", [(3, 1), (3, 4), (2, 8), (5, 2)])
def test_dilated_conv_is_causal_with_the_stated_receptive_field(k, d):
    torch.manual_seed(0)
    conv = DilatedTemporalConv(6, k, d, causal=True).eval()
    T, t = 40, 17
    x = torch.randn(2, T, 6)
    x2 = x.clone()
    x2[:, t] += torch.randn(2, 6)                   # perturb one step only
    with torch.no_grad():
        diff = (conv(x) - conv(x2)).abs().sum((0, 2))   # [T]
    span = (k - 1) * d
    assert conv.receptive_field == span + 1
    assert (diff[:t] == 0).all(), "output before t changed: not causal"
    # a one-step change reaches exactly the outputs that see it: t, t+d, ..., t+span
    assert ((diff > 0).nonzero().flatten() == torch.arange(t, t + span + 1, d)).all()


def test_non_causal_conv_is_centred_and_keeps_length():
    conv = DilatedTemporalConv(4, 3, 2, causal=False).eval()
    x = torch.randn(1, 15, 4)
    x2 = x.clone()
    x2[:, 7] += 1.0
    with torch.no_grad():
        diff = (conv(x) - conv(x2)).abs().sum((0, 2))
    assert conv(x).shape == (1, 15, 4)
    assert (diff > 0).nonzero().flatten().tolist() == [5, 7, 9]


def test_vsn_weights_sum_to_one_and_follow_the_input():
    torch.manual_seed(0)
    vsn = VariableSelectionNetwork(n_vars=6, d_model=16, var_dim=4)
    x = torch.randn(3, 7, 6)
    out, w = vsn(x)
    assert out.shape == (3, 7, 16) and w.shape == (3, 7, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 7))
    assert (w > 0).all()
    assert torch.equal(vsn.last_weights, w.detach())
    # weights are per sample and per step, not one global vector
    assert not torch.allclose(w[0, 0], w[1, 3])
    with pytest.raises(ValueError, match="expects 6 variables"):
        vsn(torch.randn(3, 7, 5))


def test_vsn_per_step_no_mixing_across_time():
    vsn = VariableSelectionNetwork(4, 8, 4).eval()
    x = torch.randn(2, 9, 4)
    x2 = x.clone()
    x2[:, 5] = torch.randn(2, 4)
    a, b = vsn(x)[0], vsn(x2)[0]
    torch.testing.assert_close(a[:, :5], b[:, :5])
    torch.testing.assert_close(a[:, 6:], b[:, 6:])


def test_grouped_grn_keeps_variables_independent():
    """Grouped weights: changing variable j's input changes only variable j's output."""
    torch.manual_seed(0)
    grn = GatedResidualNetwork(4, 8, 4, n_groups=5).eval()
    e = torch.randn(2, 3, 5, 4)
    e2 = e.clone()
    e2[..., 2, :] += 1.0
    changed = (grn(e) - grn(e2)).abs().sum((0, 1, 3)) > 0    # [G]
    assert changed.tolist() == [False, False, True, False, False]
    lin = GroupedLinear(5, 4, 3)
    # group g equals an ordinary matmul with its own weight
    torch.testing.assert_close(lin(e)[..., 1, :], e[..., 1, :] @ lin.weight[1] + lin.bias[1])


def test_grn_with_context_and_without_it():
    grn = GatedResidualNetwork(6, 8, 4, d_context=3)
    a, c = torch.randn(2, 6), torch.randn(2, 3)
    assert grn(a, c).shape == (2, 4)
    assert not torch.allclose(grn(a, c), grn(a, torch.randn(2, 3)))
    with pytest.raises(ValueError, match="d_context"):
        GatedResidualNetwork(6, 8)(a, c)


def test_horizon_decoder_and_residual_ffn_shapes():
    dec = HorizonDecoder(16, 4, horizon=5, n_layers=2)
    for S in (1, 7, 30):
        assert dec(torch.randn(3, S, 16)).shape == (3, 5, 16)
    ffn = ResidualFeedForward(16, 2)
    with torch.no_grad():
        ffn.ffn.net[-2].weight.zero_(); ffn.ffn.net[-2].bias.zero_()
    x = torch.randn(2, 4, 16)
    torch.testing.assert_close(ffn(x), x)     # zeroed branch leaves the identity path
