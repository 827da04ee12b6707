"""Warm starts for the RL tests: a briefly supervised policy on each synthetic market (module scope)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plusultra_core.simulation import SimulatorConfig
from plusultra_core.training.runner import run_training
from plusultra_core.rl.synthetic import FEATURES, synthetic_frame
from tests.core.training.helpers import train_config

# real frictions: fee, spread, square-root impact, a volume cap and short borrow
FRICTIONS = SimulatorConfig(fee_bps=1.0, half_spread_bps=2.0, impact_bps=10.0, max_participation=0.1,
                            borrow_bps=50.0)
TRAIN_DAYS = 1000          # PPO (fit + selection slice) sees these; the rest is held-out test time
CONTEXT = 16


class Market:
    """A synthetic market, its training part and a supervised warm start trained on that part."""

    def __init__(self, tmp_dir, edge: float, seed: int):
        torch.set_num_threads(1)
        self.frame = synthetic_frame(edge=edge, seed=seed)
        days = np.sort(self.frame["timestamp"].unique())
        self.split = days[TRAIN_DAYS]
        self.train = self.frame[self.frame["timestamp"] < self.split].reset_index(drop=True)
        cfg = train_config(tmp_dir, trainer={"max_epochs": 1, "seed": 0}, feature_names=FEATURES,
                           zscore=False, horizon=2, context_length=CONTEXT)
        self.checkpoint = run_training(cfg, self.train, feature_names=FEATURES).path


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return Market(tmp_path_factory.mktemp("planted"), edge=0.15, seed=0)


@pytest.fixture(scope="module")
def random_walk(tmp_path_factory):
    return Market(tmp_path_factory.mktemp("random_walk"), edge=0.0, seed=1)
