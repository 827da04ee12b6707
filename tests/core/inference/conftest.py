"""One tiny supervised checkpoint per test session (policy head), trained on the small synthetic
database, plus one torch thread per test (tiny models on a shared 2-core box)."""

from __future__ import annotations

import pytest
import torch

from tests.core.training.helpers import train_config

FEATURES = ["ret_1d", "mom_5", "mom_20", "vol_std_20", "rsi_14"]
CONTEXT = 16


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def train_tiny(out_dir, db_path, head: str = "policy"):
    """Train a tiny checkpoint (1 epoch, a few steps) and return its `CheckpointInfo`."""
    from plusultra_core.config import load_config
    from plusultra_core.config import to_dict
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
def tiny_checkpoint(tmp_path_factory, small_synth_db_path):
    """Path of a tiny supervised (policy head) checkpoint trained on ``small_synth_db_path``."""
    return train_tiny(tmp_path_factory.mktemp("ckpt_policy"), small_synth_db_path).path


@pytest.fixture(scope="session")
def quantile_checkpoint(tmp_path_factory, small_synth_db_path):
    """Same, with a quantile head (probabilities derived from the position)."""
    return train_tiny(tmp_path_factory.mktemp("ckpt_quantile"), small_synth_db_path, head="quantile").path
