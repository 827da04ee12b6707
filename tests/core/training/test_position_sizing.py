"""The default trading loss gives positions a size: a supervised model trained on a planted AR(1)
signal holds sizeable positions that follow the signal's sign, instead of the tiny near-constant
long the scale-invariant Sharpe term alone drifts to."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from plusultra_core.losses import LossConfig
from plusultra_core.training.checkpoints import load_checkpoint
from plusultra_core.training.config import build_model_config
from plusultra_core.training.datamodule import WindowDataModule
from plusultra_core.training.runner import run_training
from plusultra_core.training.supervised_module import SupervisedTradingModule

from .helpers import train_config
from .synthetic import FEATURES, ar1_frame


@torch.no_grad()
def _positions_and_signal(cfg, info, frame) -> tuple[np.ndarray, np.ndarray]:
    """First-step positions on the test split and the planted signal (the last input bar's
    return, whose AR(1) forecast is ``phi`` times it), sample for sample."""
    state, _ = load_checkpoint(info.path)
    module = SupervisedTradingModule(build_model_config(cfg.model), cfg.model.architecture, len(FEATURES),
                                     cfg.data.horizon, cfg.head, cfg.loss, cfg.optim)
    module.load_state_dict(state)
    module.eval()
    dm = WindowDataModule.from_frame(frame, cfg.data, FEATURES, seed=cfg.trainer.seed)
    positions, signal = [], []
    for block in dm.eval_blocks("test"):
        x = dm._view[block][0]                                   # [B, T, F]
        out, _ = module(x)
        positions.append(out.position[:, 0].numpy())             # [B]
        signal.append(x[:, -1, FEATURES.index("lag_1")].numpy())  # [B] r_t in sigma units
    return np.concatenate(positions), np.concatenate(signal)


@pytest.mark.parametrize("utility_weight", [None, 0.0])
def test_default_loss_sizes_positions_and_follows_the_signal(tmp_path, utility_weight):
    frame = ar1_frame(n_symbols=4, n_days=1000, phi=0.4, seed=2)
    cfg = train_config(tmp_path)                 # tiny temporal_hybrid, 3 epochs, ~110 steps
    # the library's default loss (the helper's 1 bp cost would make sizing easier)
    cfg.loss = LossConfig() if utility_weight is None else LossConfig(utility_weight=utility_weight)
    info = run_training(cfg, frame, feature_names=FEATURES)
    pos, signal = _positions_and_signal(cfg, info, frame)
    assert pos.size > 100
    size = float(np.abs(pos).mean())
    corr = float(np.corrcoef(pos, signal)[0, 1])
    if utility_weight is None:
        assert size > 0.1, size                   # positions have a real size ...
        assert corr > 0.3, corr                   # ... and follow the planted signal
        assert 0.2 < float(np.mean(pos < 0)) < 0.8  # short about as often as long (zero drift)
    else:
        # the control: without the utility term the same run keeps positions far smaller
        assert size < 0.1, size
