"""Supervised training learns a planted signal out of sample, is reproducible, warm-starts by name,
and every registry backbone trains through the Lightning modules."""

from __future__ import annotations

import pytest
import torch

from plusultra_core.errors import CheckpointError
from plusultra_core.models.registry import ARCHITECTURES
from plusultra_core.training.checkpoints import load_checkpoint, save_checkpoint
from plusultra_core.training.config import build_model_config
from plusultra_core.training.pretrain_module import PretrainLightningModule
from plusultra_core.training.runner import run_training
from plusultra_core.training.supervised_module import SupervisedTradingModule

from .helpers import pretrain_config, train_config
from .synthetic import FEATURES, ar1_frame


@pytest.fixture(scope="module")
def ar1():
    return ar1_frame(n_symbols=4, n_days=1000, phi=0.4, seed=0)


def test_learns_planted_ar1_signal_out_of_sample(tmp_path, ar1):
    info = run_training(train_config(tmp_path), ar1, feature_names=FEATURES)
    m = info.metrics
    # test split = the last 20% of the timeline, never seen in training or model selection
    assert m["test/n_periods"] > 100
    assert m["test/sharpe"] > 2.0, m                      # net of 1 bp costs, annualised
    assert m["test/sharpe"] > m["test/long_sharpe"] + 1.0, m
    assert m["test/ic"] > 0.15, m                          # expected return tracks the AR(1) forecast
    state, side = load_checkpoint(info.path)
    assert side["kind"] == "supervised" and side["feature_names"] == FEATURES
    assert side["splits"]["train"]["last_target"] < side["splits"]["val"]["first_target"]
    assert side["splits"]["val"]["last_target"] < side["splits"]["test"]["first_target"]
    assert any(k.startswith("head.") for k in state) and any(k.startswith("backbone.") for k in state)


def test_seeded_runs_are_reproducible(tmp_path, ar1):
    small = {"max_epochs": 1, "limit_train_batches": 5}
    a = run_training(train_config(tmp_path / "a", trainer=small), ar1, feature_names=FEATURES)
    b = run_training(train_config(tmp_path / "b", trainer=small), ar1, feature_names=FEATURES)
    keys = [k for k in a.metrics if k.startswith(("val/", "test/"))]
    assert keys and {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    sa, sb = load_checkpoint(a.path)[0], load_checkpoint(b.path)[0]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = run_training(train_config(tmp_path / "c", trainer={**small, "seed": 1}), ar1, feature_names=FEATURES)
    assert c.metrics["val/loss"] != a.metrics["val/loss"]


def _modules(cfg_pre, cfg_train):
    pre = PretrainLightningModule(build_model_config(cfg_pre.model), cfg_pre.model.architecture,
                                          len(FEATURES), cfg_pre.masking, cfg_pre.optim, horizon=cfg_pre.data.horizon)
    sup = SupervisedTradingModule(build_model_config(cfg_train.model), cfg_train.model.architecture,
                                  len(FEATURES), cfg_train.data.horizon, cfg_train.head, cfg_train.loss,
                                  cfg_train.optim)
    return pre, sup


def test_warm_start_by_name_and_mismatch_errors(tmp_path):
    pre, sup = _modules(pretrain_config(tmp_path), train_config(tmp_path))
    with torch.no_grad():
        for p in pre.backbone.parameters():
            p.add_(1.0)  # make the pretrained weights distinguishable from a fresh init
    path = tmp_path / "pre.pt"
    save_checkpoint(path, pre.state_dict(), {"architecture": "temporal_hybrid"})
    head_before = {k: v.clone() for k, v in sup.head.state_dict().items()}
    diff = sup.load_encoder(path)
    assert diff == {"missing": [], "unexpected": [], "shape_mismatch": []}
    for k, v in pre.encoder_state_dict().items():
        assert torch.equal(sup.backbone.state_dict()[k], v), k
    assert all(torch.equal(head_before[k], v) for k, v in sup.head.state_dict().items())
    # a backbone state dict (no prefix) loads the same way
    sup.load_encoder(pre.encoder_state_dict())

    # another width: every mismatched shape is listed
    wide = train_config(tmp_path)
    wide.model.params["d_model"] = 32
    _, sup_wide = _modules(pretrain_config(tmp_path), wide)
    with pytest.raises(CheckpointError, match=r"shape-mismatch \[.*checkpoint .*16.* vs model .*32") as err:
        sup_wide.load_encoder(path)
    assert "pre.pt" in str(err.value)
    # another architecture: missing and unexpected keys are listed, with both names
    other = train_config(tmp_path, architecture="temporal_fusion")
    _, sup_other = _modules(pretrain_config(tmp_path, architecture="temporal_fusion"), other)
    with pytest.raises(CheckpointError, match=r"architecture 'temporal_hybrid'.*missing \[.*unexpected \["):
        sup_other.load_encoder(path)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_backbone_trains_through_lightning(tmp_path, ar1, architecture):
    """Two optimizer steps of pretraining and of supervised training change the weights."""
    import pytorch_lightning as pl

    from plusultra_core.training.datamodule import WindowDataModule

    cfg_pre, cfg_train = pretrain_config(tmp_path, architecture), train_config(tmp_path, architecture)
    pre, sup = _modules(cfg_pre, cfg_train)
    dm = WindowDataModule.from_frame(ar1, cfg_train.data, FEATURES)
    for module in (pre, sup):
        before = {k: v.clone() for k, v in module.backbone.state_dict().items()}
        trainer = pl.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                             accelerator="cpu")
        trainer.fit(module, datamodule=dm)
        assert trainer.global_step == 2
        assert torch.isfinite(torch.tensor(float(trainer.callback_metrics["train/loss"])))
        changed = [k for k, v in module.backbone.state_dict().items() if not torch.equal(v, before[k])]
        assert changed, f"{architecture}: no backbone weight moved"
