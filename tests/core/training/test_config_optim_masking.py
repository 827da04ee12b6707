"""Training configs load from the shipped YAML and fail loudly; optimiser groups and schedule;
mask generation statistics and structure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from plusultra_core.config import load_config
from plusultra_core.errors import ConfigError
from plusultra_core.training.config import MaskingConfig, OptimConfig, PretrainConfig, TrainConfig
from plusultra_core.training.masking import generate_mask
from plusultra_core.training.optim import build_optimizer, parameter_groups, warmup_cosine_lambda

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_shipped_configs_load():
    pre = load_config(PretrainConfig, CONFIGS / "pretrain.yaml")
    train = load_config(TrainConfig, CONFIGS / "train.yaml")
    # one shared base: same data and backbone, so a pretrained backbone loads into the supervised model
    assert pre.data == train.data and pre.model == train.model and pre.model.params["d_model"] == 32
    assert train.head.kind == "policy" and train.optim.lr > pre.optim.lr
    assert pre.masking.strategies == ("random", "span", "feature")


def test_head_and_loss_share_one_return_scale(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("head:\n  return_scale: 0.02\n")
    with pytest.raises(ConfigError, match=r"head.return_scale \(0.02\) differs from loss.return_scale \(0.01\)"):
        load_config(TrainConfig, bad)


def test_unknown_key_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  context_lenght: 32\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*data.*'context_lenght'"):
        load_config(TrainConfig, bad)
    bad.write_text("trainer:\n  precision: fp8\n")
    with pytest.raises(ConfigError, match="precision"):
        load_config(PretrainConfig, bad)
    bad.write_text("data:\n  horizon: 5\n  purge_bars: 2\n")
    with pytest.raises(ConfigError, match="purge"):
        load_config(TrainConfig, bad)
    bad.write_text("masking:\n  strategies: [random, blur]\n")
    with pytest.raises(ConfigError, match="strategies"):
        load_config(PretrainConfig, bad)


@pytest.mark.parametrize("key, noun", [("feature_names", "feature"), ("feature_tags", "tag"), ("symbols", "symbol")])
def test_an_empty_selection_list_names_the_key_and_file(tmp_path, key, noun):
    """``[]`` used to be read as "not given", i.e. every feature (or symbol)."""
    bad = tmp_path / "empty.yaml"
    bad.write_text(f"data:\n  {key}: []\n")
    with pytest.raises(ConfigError, match=rf"empty\.yaml.*data\.{key} is empty: name at least one {noun} "
                                          "or remove the key$"):
        load_config(TrainConfig, bad)
    bad.write_text(f"data:\n  {key}: null\n")
    assert getattr(load_config(TrainConfig, bad).data, key) is None


def test_parameter_groups_exclude_norms_biases_embeddings():
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    groups = parameter_groups(model, 0.1)
    decay = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert decay == {id(model[1].weight), id(model[3].weight)}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    # learned queries / positional tables are not decayed; a projection inside "embed" is
    model.queries = nn.Parameter(torch.zeros(2, 4))
    model.pos = nn.Parameter(torch.zeros(8, 4))
    model.embed = nn.Linear(4, 4)
    decay = {id(p) for p in parameter_groups(model, 0.1)[0]["params"]}
    assert id(model.queries) not in decay and id(model.pos) not in decay and id(model.embed.weight) in decay


def test_warmup_then_cosine_schedule():
    f = warmup_cosine_lambda(10, 110, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 200))
    model = nn.Linear(3, 3)
    opt, sched = build_optimizer(model, OptimConfig(lr=1e-2, warmup_steps=4), total_steps=20)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[3] == pytest.approx(1e-2) and lrs[0] < lrs[3] and lrs[-1] < lrs[4]


def test_mask_strategies_structure_and_rates():
    torch.manual_seed(0)
    b, t, f = 256, 64, 6
    span = generate_mask(b, t, f, MaskingConfig(strategies=("span",), span_length=5, span_ratio=0.1))
    # span masks cover whole time steps (all features) in runs of >= span_length
    assert torch.equal(span, span[:, :, :1].expand_as(span))
    steps = span[:, :, 0].int()
    starts = (steps.diff(dim=1) == 1).sum()
    assert starts > 0 and steps.sum() / (starts + span[:, 0, 0].sum()) >= 5
    rand = generate_mask(b, t, f, MaskingConfig(strategies=("random",), mask_ratio=0.2))
    assert abs(rand[:, :, 0].float().mean().item() - 0.2) < 0.02
    feat = generate_mask(b, t, f, MaskingConfig(strategies=("feature", "random"), mask_ratio=0.0,
                                                feature_mask_ratio=0.3))
    # a masked feature is masked over the whole window, and never all features at once
    whole = feat.all(dim=1)                                                   # [B, F]
    residual = feat & ~whole.unsqueeze(1)                                     # cells outside whole features
    assert whole.any() and not whole.all(dim=1).any()
    assert (residual.any(dim=2).sum(dim=1) <= 1).all()  # only the fallback step, when nothing else
    assert feat.flatten(1).any(dim=1).all()  # every sample has something to reconstruct
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    cfg = MaskingConfig()
    assert torch.equal(generate_mask(8, 32, 4, cfg, generator=g1), generate_mask(8, 32, 4, cfg, generator=g2))
