"""Pretraining lowers masked reconstruction error; the data module's loaders keep time order."""

from __future__ import annotations

import numpy as np
import pytest

from plusultra_core.errors import ConfigError
from plusultra_core.training.checkpoints import load_checkpoint
from plusultra_core.training.config import build_model_config
from plusultra_core.training.datamodule import WindowDataModule, ordered_blocks
from plusultra_core.training.pretrain_module import PretrainLightningModule
from plusultra_core.training.runner import PRETRAINED_NAME, run_pretraining
from plusultra_core.training.trainer import build_trainer

from .helpers import pretrain_config
from .synthetic import FEATURES, ar1_frame, smooth_frame


def test_pretraining_halves_masked_reconstruction_error(tmp_path):
    # slowly moving features: a masked cell is predictable from the visible steps before it,
    # so a model that learns anything cuts the error far below the untrained one
    frame = smooth_frame(n_symbols=3, n_days=800, seed=1)
    cfg = pretrain_config(tmp_path, trainer={"max_epochs": 4})
    # bidirectional: a masked span is interpolated from both sides (a causal backbone can only
    # extrapolate from the left, which halves the error only barely)
    cfg.model.params["causal"] = False
    trainer = build_trainer(cfg.trainer, tmp_path, gradient_clip_val=cfg.optim.grad_clip)
    dm = WindowDataModule.from_frame(frame, cfg.data, FEATURES)
    module = PretrainLightningModule(build_model_config(cfg.model), cfg.model.architecture,
                                             len(FEATURES), cfg.masking, cfg.optim, horizon=cfg.data.horizon)
    initial = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/masked_loss"]
    trainer.fit(module, datamodule=dm)
    final = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/masked_loss"]
    assert final < 0.5 * initial, (initial, final)


def test_run_pretraining_writes_backbone_and_sidecar(tmp_path):
    frame = ar1_frame(n_symbols=2, n_days=500, seed=2)
    cfg = pretrain_config(tmp_path, trainer={"max_epochs": 1, "limit_train_batches": 3})
    info = run_pretraining(cfg, frame, feature_names=FEATURES)
    assert info.path == tmp_path / PRETRAINED_NAME and info.sidecar_path.is_file()
    state, side = load_checkpoint(info.path)
    assert side["kind"] == "pretrain" and side["masking"]["strategies"] == ["random", "span", "feature"]
    assert side["data_range"]["symbols"] == ["S0", "S1"] and np.isfinite(side["metrics"]["val/masked_loss"])
    assert {"mask_token", "decoder.weight"} <= set(state) and any(k.startswith("backbone.") for k in state)
    assert not (tmp_path / "lightning" / "best.ckpt").exists()  # the Lightning copy is not left behind


def test_eval_blocks_are_time_ordered_single_symbol_runs():
    frame = ar1_frame(n_symbols=3, n_days=300, seed=3)
    cfg = pretrain_config("unused", block_length=8, blocks_per_batch=2).data
    dm = WindowDataModule.from_frame(frame, cfg, FEATURES)
    ds = dm.dataset
    for split in ("val", "test"):
        blocks = dm.eval_blocks(split)
        flat = np.concatenate(blocks)
        assert np.array_equal(np.sort(flat), np.sort(dm.splits[split]))     # every sample exactly once
        for block in blocks:
            assert len(set(ds.group[block])) == 1 and np.all(np.diff(ds.window_start[block]) == 1)
            assert 16 <= len(block) < 32 or len(block) == len(dm.splits[split]) / 3
    x, y, group, time = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (16, 16, 3) and tuple(y.shape) == (16, 2)
    # train batches: blocks of 8 consecutive windows of one symbol
    t = time.numpy().reshape(2, 8)
    g = group.numpy().reshape(2, 8)
    assert (np.diff(t, axis=1) > 0).all() and (g == g[:, :1]).all()


def test_ordered_blocks_merge_short_tails_and_split_gaps():
    group = np.array([0] * 7 + [1] * 3)
    start = np.array([0, 1, 2, 3, 5, 6, 7, 0, 1, 2])      # a hole between 3 and 5 in group 0
    blocks = ordered_blocks(np.arange(10), group, start, 1, block_length=2)
    assert [b.tolist() for b in blocks] == [[0, 1], [2, 3], [4, 5, 6], [7, 8, 9]]


def test_split_errors_are_clear():
    frame = ar1_frame(n_symbols=1, n_days=60, seed=4)
    with pytest.raises(ConfigError, match="no val windows"):
        WindowDataModule.from_frame(frame, pretrain_config("x", context_length=32).data, FEATURES)
    with pytest.raises(ConfigError, match="lacks column.*nope"):
        WindowDataModule.from_frame(frame, pretrain_config("x").data, ["nope"])
    with pytest.raises(ConfigError, match="val_end.*after.*train_end"):
        WindowDataModule.from_frame(frame, pretrain_config("x", train_end="2001-02-20", val_end="2001-02-01").data,
                                    FEATURES)
