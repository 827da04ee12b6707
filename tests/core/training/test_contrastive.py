"""TS2Vec-style contrastive pretraining: it learns planted structure, stays causal, is configured
loudly, reproduces under a seed and warm-starts the supervised model like masked pretraining.

Tiny widths and a few hundred optimiser steps on in-memory tensors: the file runs in seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from plusultra_core.config import config_hash, load_config
from plusultra_core.errors import ConfigError
from plusultra_core.models import registry
from plusultra_core.training.checkpoints import load_checkpoint
from plusultra_core.training.config import (ContrastiveConfig, MaskingConfig, OptimConfig, PretrainConfig,
                                            build_model_config)
from plusultra_core.training.contrastive import (augment, contrastive_loss, hierarchical_contrastive_loss,
                                                 sample_crops, take_crops)
from plusultra_core.training.pretrain_module import PretrainLightningModule
from plusultra_core.training.runner import run_pretraining
from plusultra_core.training.supervised_module import SupervisedTradingModule

from .helpers import pretrain_config, tiny_params, train_config
from .synthetic import FEATURES, smooth_frame

N_FEATURES = 3


def _module(architecture: str = "temporal_hybrid", objective: str = "contrastive", seed: int = 0, **cfg):
    params = tiny_params(architecture, patch_len=4, patch_stride=2)
    torch.manual_seed(seed)
    return PretrainLightningModule(registry.build_config(architecture, params), architecture, N_FEATURES,
                                   MaskingConfig(), OptimConfig(), objective=objective,
                                   contrastive=ContrastiveConfig(**cfg))


def _regime_windows(n: int, seed: int, steps: int = 32, phi: float = 0.3):
    """Planted structure: each window is one regime, AR(1) with coefficient +phi (trending) or
    -phi (mean-reverting) in every feature, unit variance and z-scored per window as the pipeline
    does -- the regimes differ only in how a step follows the previous one."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)                                   # [N]
    coef = torch.where(label == 1, phi, -phi).view(n, 1)                             # [N, 1]
    noise = torch.randn(n, steps, N_FEATURES, generator=g)
    x = torch.empty_like(noise)
    x[:, 0] = noise[:, 0]
    for t in range(1, steps):  # the AR recursion is sequential in time (test data only)
        x[:, t] = coef * x[:, t - 1] + noise[:, t] * math.sqrt(1 - phi ** 2)
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)                       # [N, T, F]
    return x, label


def _probe_accuracy(module, train, test) -> float:
    """Held-out accuracy of a ridge linear probe on TS2Vec's instance representation (embeddings
    max-pooled over time) -- features standardised on the probe's training half."""
    module.eval()
    with torch.no_grad():
        (z, y), (zt, yt) = [(module.encode(x).amax(dim=1), y) for x, y in (train, test)]   # [N, D]
    mu, sd = z.mean(0), z.std(0) + 1e-6
    design = [torch.cat([(a - mu) / sd, torch.ones(len(a), 1)], dim=1) for a in (z, zt)]
    w = torch.linalg.solve(design[0].T @ design[0] + torch.eye(design[0].shape[1]),
                           design[0].T @ (2.0 * y.float() - 1.0))
    return float(((design[1] @ w > 0).long() == yt).float().mean())


@pytest.fixture(scope="module")
def trained():
    """A tiny temporal_hybrid trained 200 steps on the regime windows; its random twin; the losses."""
    train, test = _regime_windows(512, seed=1), _regime_windows(512, seed=2)
    module, untouched = _module(seed=0), _module(seed=0)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    module.train()
    losses = []
    for _ in range(200):
        idx = torch.randint(0, len(train[0]), (32,), generator=g)
        loss = module.contrastive_loss(train[0][idx], generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return module, untouched, losses, train, test


def test_loss_falls_on_planted_structure(trained):
    _, _, losses, _, _ = trained
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    # measured: 1.51 -> 0.93; an encoder that learned nothing stays near the chance level (~1.5)
    assert last < 0.8 * first, (first, last)


def test_learned_embeddings_separate_regimes_better_than_a_random_encoder(trained):
    module, untouched, _, train, test = trained
    learned, random = _probe_accuracy(module, train, test), _probe_accuracy(untouched, train, test)
    # measured 0.77 vs 0.66 (seeds 1, 2 of the init: 0.73 vs 0.64, 0.74 vs 0.60); a loss whose
    # positive pairs are shifted by one window learns to 0.61, below the random encoder
    assert learned > random + 0.05, (learned, random)


def test_hierarchical_loss_rewards_matching_views_only():
    # one orthogonal direction per (window, step), scaled: the positive pair's dot product is 100,
    # every negative's 0, at every max-pooled level too
    b, o = 4, 8
    z = 10.0 * torch.eye(b * o).view(b, o, b * o)                                      # [B, O, D]
    matched = hierarchical_contrastive_loss(z, z.clone())
    swapped = hierarchical_contrastive_loss(z, z.roll(1, dims=0))                      # positives from another window
    assert matched < 1e-3 and swapped > 1.0, (matched, swapped)
    # constant in time, distinct per window: instance contrast (alpha=1) is satisfied, temporal
    # contrast (alpha=0) cannot tell the steps apart: chance level log(2O - 1) at the finest level
    flat = z[:, :1].expand(b, o, b * o)
    assert hierarchical_contrastive_loss(flat, flat, alpha=1.0) < 1e-3
    assert hierarchical_contrastive_loss(flat, flat, alpha=0.0) > 1.0


def test_crops_overlap_inside_the_window():
    g = torch.Generator().manual_seed(3)
    x = torch.arange(4 * 20, dtype=torch.float32).view(4, 20, 1).expand(4, 20, 2)     # [B, T, F]: value = b*T + t
    for _ in range(50):
        plan = sample_crops(4, 20, 4, generator=g)
        assert 4 <= plan.overlap <= plan.len1 <= 20
        assert (plan.start1 >= 0).all() and (plan.start1 + plan.len1 <= 20).all()
        view1, view2 = take_crops(x, plan.start1, plan.len1), take_crops(x, plan.start2, plan.overlap)
        torch.testing.assert_close(view1[:, -plan.overlap:], view2)                   # same bars, same order
        torch.testing.assert_close(view1[:, 0, 0], x[:, 0, 0] + plan.start1.float())  # each window's own offset
    with pytest.raises(ValueError, match="min_overlap=8"):
        sample_crops(2, 6, 8)


def test_augmentations_are_what_the_config_asks():
    x = torch.randn(4, 10, 3)
    assert torch.equal(augment(x, ContrastiveConfig(jitter_std=0, scale_std=0, mask_ratio=0)), x)
    g = torch.Generator().manual_seed(0)
    masked = augment(x, ContrastiveConfig(jitter_std=0, scale_std=0, mask_ratio=0.5), generator=g)
    zero = (masked == 0).all(-1)                                                     # [B, L]: whole steps
    assert 0 < zero.float().mean() < 1 and torch.equal(masked[~zero], x[~zero])
    scaled = augment(x, ContrastiveConfig(jitter_std=0, scale_std=0.2, mask_ratio=0), generator=g)
    ratio = scaled / x                                                               # one factor per window and feature
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


@pytest.mark.parametrize("name", registry.ARCHITECTURES)
def test_embeddings_never_see_later_steps(name):
    """Every shipped backbone is causal: perturbing steps after t leaves the embeddings of steps
    <= t unchanged, so an overlap step's embedding in either crop depends on its past only."""
    module = _module(name).eval()
    x = torch.randn(2, 24, N_FEATURES)
    for t in (0, 9, 22):
        later = x.clone()
        later[:, t + 1:] = torch.randn(2, 24 - t - 1, N_FEATURES)
        with torch.no_grad():
            a, b = module.encode(x), module.encode(later)
        torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-4)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # no Trainer attached: logging is a no-op
def test_the_objective_reads_the_input_window_only():
    """The batch's targets (the future bars) never reach the loss: NaN targets change nothing."""
    module = _module(objective="both")
    x, y = torch.randn(8, 16, N_FEATURES), torch.randn(8, 2)
    losses = []
    for target in (y, torch.full_like(y, float("nan"))):
        torch.manual_seed(5)
        losses.append(module.training_step((x, target), 0))
    assert torch.isfinite(losses[0]) and torch.equal(losses[0], losses[1])


def test_both_is_masked_plus_weighted_contrastive():
    module = _module(objective="both", weight=0.25)
    x = torch.randn(8, 16, N_FEATURES)

    def gens():
        return {"masked": torch.Generator().manual_seed(1), "contrastive": torch.Generator().manual_seed(2)}

    out = module.losses(x, gens())
    torch.testing.assert_close(out["loss"], out["masked"] + 0.25 * out["contrastive"])
    torch.testing.assert_close(out["contrastive"], module.contrastive_loss(x, gens()["contrastive"]))
    # a contrastive-only run trains the backbone alone: no mask token or decoder in its checkpoint
    assert not any(k.startswith(("mask_token", "decoder")) for k in _module().state_dict())


def test_seeded_losses_reproduce():
    module = _module()
    x = torch.randn(8, 16, N_FEATURES)
    a, b, c = (contrastive_loss(module.encode, x, module.contrastive, generator=torch.Generator().manual_seed(s))
               for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("raw, key", [
    ({"objective": "contrast"}, "objective"),
    ({"objective": 1}, "objective"),
    ({"contrastive": {"alpha": 1.5}}, "contrastive.alpha"),
    ({"contrastive": {"min_overlap": 1}}, "contrastive.min_overlap"),
    ({"contrastive": {"mask_ratio": 1.0}}, "contrastive.mask_ratio"),
    ({"contrastive": {"weight": 0}}, "contrastive.weight"),
    ({"contrastive": {"alhpa": 0.5}}, "alhpa"),
    ({"objective": "contrastive", "contrastive": {"min_overlap": 65}}, "contrastive.min_overlap"),
])
def test_config_errors_name_the_file_and_key(tmp_path, raw, key):
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump({"data": {"context_length": 64}, **raw}))
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, path)
    message = str(err.value)
    assert str(path) in message and key in message and "\n" not in message, message


def test_config_hash_follows_the_objective(tmp_path):
    hashes = {obj: config_hash(load_config(PretrainConfig, {"objective": obj})) for obj in ("masked", "contrastive", "both")}
    assert len(set(hashes.values())) == 3
    assert load_config(PretrainConfig, {}).objective == "masked"  # the default run is unchanged


def test_contrastive_run_reproduces_and_warm_starts_the_supervised_model(tmp_path):
    frame = smooth_frame(n_symbols=2, n_days=400, seed=4)
    small = {"max_epochs": 1, "limit_train_batches": 4}
    infos = []
    for run in ("a", "b"):
        cfg = pretrain_config(tmp_path / run, trainer=small)
        cfg.objective = "contrastive"
        infos.append(run_pretraining(cfg, frame, feature_names=FEATURES))
    (state, side), (state_b, _) = load_checkpoint(infos[0].path), load_checkpoint(infos[1].path)
    assert side["objective"] == "contrastive" and math.isfinite(side["metrics"]["val/contrastive_loss"])
    assert "val/masked_loss" not in side["metrics"]
    assert state.keys() == state_b.keys() and all(torch.equal(state[k], state_b[k]) for k in state)
    tcfg = train_config(tmp_path / "sup")
    sup = SupervisedTradingModule(build_model_config(tcfg.model), tcfg.model.architecture, len(FEATURES),
                                  tcfg.data.horizon, tcfg.head, tcfg.loss, tcfg.optim)
    assert sup.load_encoder(infos[0].path) == {"missing": [], "unexpected": [], "shape_mismatch": []}
    for k, v in sup.backbone.state_dict().items():
        assert torch.equal(v, state[f"backbone.{k}"]), k
