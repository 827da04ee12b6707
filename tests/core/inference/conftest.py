"""How the session's tiny supervised checkpoint is trained (`train_tiny`; the ``tiny_checkpoint``
fixture itself is in tests/conftest.py, shared with the serving and container tests), and a
quantile-head variant of it."""

from __future__ import annotations

import pytest
import torch

from tests.core.training.helpers import train_config

FEATURES = ["ret_1d", "mom_5", "mom_20", "vol_std_20", "rsi_14"]
CONTEXT = 16


def train_tiny(out_dir, db_path, head: str = "policy"):
    """Train a tiny checkpoint (1 epoch, a few steps) and return its `CheckpointInfo`."""
    from plusultra_core.config import load_config, to_dict
    from plusultra_core.training.config import TrainConfig
    from plusultra_core.training.runner import run_training

    cfg = train_config(out_dir, db_path=str(db_path), feature_names=FEATURES, context_length=CONTEXT,
                       trainer={"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2})
    raw = to_dict(cfg)
    raw["head"] = {"kind": head}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_training(load_config(TrainConfig, raw))
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def quantile_checkpoint(tmp_path_factory, tiny_checkpoint):
    """An untrained quantile-head checkpoint with the tiny model's sidecar (no second training run:
    loading and predicting do not care whether the weights were fitted)."""
    from plusultra_core.config import to_dict
    from plusultra_core.heads import HeadConfig
    from plusultra_core.inference.predict import load_supervised
    from plusultra_core.training.checkpoints import save_checkpoint
    from plusultra_core.training.supervised_module import SupervisedTradingModule

    module, side = load_supervised(tiny_checkpoint)
    head = HeadConfig(kind="quantile", quantiles=(0.1, 0.5, 0.9))
    torch.manual_seed(0)
    quant = SupervisedTradingModule(module.model_cfg, side["architecture"], len(side["feature_names"]),
                                    side["horizon"], head, module.loss_cfg, module.optim_cfg)
    quant.backbone.load_state_dict(module.backbone.state_dict())
    torch.nn.init.normal_(quant.head.net[-1].weight, std=0.5)  # non-degenerate quantiles and positions
    path = tmp_path_factory.mktemp("ckpt_quantile") / "supervised.pt"
    save_checkpoint(path, quant.state_dict(), {**side, "head_config": to_dict(head)})
    return path
