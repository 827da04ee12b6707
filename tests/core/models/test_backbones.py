"""Every registered backbone builds from its YAML, runs forward/backward on CPU and keeps causality.

Parametrised over `registry.ARCHITECTURES`, so a new or renamed architecture is covered (or
fails) automatically. Sizes are tiny; the whole file runs in a few seconds.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from plusultra_core.errors import ConfigError
from plusultra_core.models import registry
from plusultra_core.models.base import BackboneOutput

N_FEATURES, HORIZON = 5, 3


# overrides are field names of each config class; every architecture gets d_model plus its own
# tiny sizes. For architectures whose fields this file does not own, candidates are filtered to
# the fields that exist so a knob rename there does not break these tests.
TINY = {"d_model": 16}
PER_ARCH = {
    "temporal_hybrid": {"n_heads": 2, "n_layers": 2, "dilations": [1, 2], "patch_len": 4,
                        "patch_stride": 2, "max_len": 64, "dropout": 0.0},
    "temporal_fusion": {"n_heads": 2, "encoder_layers": 1, "decoder_layers": 1, "max_len": 64,
                        "var_dim": 4, "dropout": 0.0},
    "omni_mixture": {"n_heads": 2, "n_layers": 2, "ssm_state_dim": 4, "coarse_factor": 2,
                     "cross_every": 1, "max_len": 64, "dropout": 0.0},
    "moe_transformer": {"n_heads": 2, "n_layers": 2, "num_experts": 4, "top_k": 2, "ff_mult": 2,
                        "max_len": 64, "dropout": 0.0, "router_dropout": 0.0},
}


def _overrides(name: str, **extra) -> dict:
    cfg_cls, _ = registry.resolve(name)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    return {k: v for k, v in {**TINY, **PER_ARCH.get(name, {}), **extra}.items() if k in fields}


def _build(name: str, **extra):
    cfg = registry.load_model_config(name, overrides=_overrides(name, **extra))
    torch.manual_seed(0)
    return cfg, registry.build_backbone(name, cfg, n_features=N_FEATURES, horizon=HORIZON)


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_forward_shapes_and_finite_grads(name):
    cfg, model = _build(name)
    x = torch.randn(4, 24, N_FEATURES)
    out = model(x)
    assert isinstance(out, BackboneOutput)
    assert out.steps.shape == (4, 24, cfg.d_model)
    assert out.horizon.shape == (4, HORIZON, cfg.d_model)
    assert out.aux_loss.dim() == 0 and out.steps.dtype == torch.float32
    # random projections so every output element matters to the loss
    g = torch.Generator().manual_seed(1)
    loss = ((out.steps * torch.randn(out.steps.shape, generator=g)).sum()
            + (out.horizon * torch.randn(out.horizon.shape, generator=g)).sum() + out.aux_loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_variable_context_length(name):
    cfg, model = _build(name)
    model.eval()
    for T in (24, 9, 17):   # a curriculum changes T between calls on the same module
        out = model(torch.randn(2, T, N_FEATURES))
        assert out.steps.shape == (2, T, cfg.d_model)
        assert out.horizon.shape == (2, HORIZON, cfg.d_model)


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_unknown_key_in_yaml_names_key_and_file(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text((registry.CONFIG_DIR / f"{name}.yaml").read_text() + "\nbogus_knob: 3\n")
    with pytest.raises(ConfigError) as err:
        registry.load_model_config(name, path=path)
    assert "bogus_knob" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_unknown_override_names_key_and_file(name):
    with pytest.raises(ConfigError) as err:
        registry.load_model_config(name, overrides={"d_modle": 16})
    assert "d_modle" in str(err.value) and f"{name}.yaml" in str(err.value)


def _assert_causal(model, T=20, t=11):
    """Changing inputs from step t on leaves steps[:, :t] unchanged (and does change steps[:, t:])."""
    model.eval()
    x = torch.randn(2, T, N_FEATURES)
    x2 = x.clone()
    x2[:, t:] = torch.randn(2, T - t, N_FEATURES)
    with torch.no_grad():
        a, b = model(x).steps, model(x2).steps
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, t:], b[:, t:], atol=1e-4), "later steps ignore the changed inputs"


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_causal_steps_do_not_see_the_future(name):
    cfg, model = _build(name)
    assert cfg.causal, f"{name}: the shipped default must be causal (a step embedding must not see the future)"
    _assert_causal(model)


@pytest.mark.parametrize("extra", [
    {"token_mode": "step"},
    {"token_mode": "patch", "patch_len": 4, "patch_stride": 4},
    {"token_mode": "patch", "patch_len": 5, "patch_stride": 3},
    {"token_mode": "patch", "patch_len": 3, "patch_stride": 1},
])
def test_temporal_hybrid_causal_in_every_token_mode(extra):
    _, model = _build("temporal_hybrid", causal=True, **extra)
    for T, t in ((20, 11), (20, 1), (13, 12)):
        _assert_causal(model, T, t)


def test_non_causal_hybrid_does_see_the_future():
    """Sanity check of the causality test itself: a non-causal model must fail it."""
    _, model = _build("temporal_hybrid", causal=False)
    with pytest.raises(AssertionError):
        _assert_causal(model)


def test_temporal_fusion_exposes_variable_weights():
    _, model = _build("temporal_fusion")
    model(torch.randn(3, 10, N_FEATURES))
    w = model.variable_weights
    assert w.shape == (3, 10, N_FEATURES) and not w.requires_grad
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 10))
    assert (w >= 0).all()


@pytest.mark.parametrize("name", ["temporal_hybrid", "temporal_fusion"])
def test_bad_inputs_raise_clear_errors(name):
    _, model = _build(name)
    with pytest.raises(ConfigError, match="max_len=64"):
        model(torch.randn(1, 65, N_FEATURES))
    with pytest.raises(ValueError, match=rf"\[B, T, {N_FEATURES}\]"):
        model(torch.randn(1, 10, N_FEATURES + 1))


@pytest.mark.parametrize("name, bad, key", [
    ("temporal_hybrid", {"patch_len": 4, "patch_stride": 5}, "patch_stride"),
    ("temporal_hybrid", {"token_mode": "bars"}, "token_mode"),
    ("temporal_hybrid", {"dilations": []}, "dilations"),
    ("temporal_hybrid", {"n_heads": 3}, "n_heads"),
    ("temporal_fusion", {"n_heads": 5}, "n_heads"),
    ("temporal_fusion", {"dropout": 1.5}, "dropout"),
])
def test_invalid_values_raise_config_error_naming_file(name, bad, key):
    with pytest.raises(ConfigError) as err:
        registry.load_model_config(name, overrides=bad)
    assert key in str(err.value) and f"{name}.yaml" in str(err.value)


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_an_input_that_does_not_fit_is_one_config_error(name):
    cfg, model = _build(name)
    with pytest.raises(ConfigError, match=rf"expects x of shape \[B, T, {N_FEATURES}\].*got \(2, 8, 4\)"):
        model(torch.randn(2, 8, N_FEATURES - 1))
    with pytest.raises(ConfigError, match=rf"T={cfg.max_len + 1} is outside \[1, max_len={cfg.max_len}\]"):
        model(torch.randn(1, cfg.max_len + 1, N_FEATURES))
