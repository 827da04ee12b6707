"""RLConfig errors name the file and key; an RL checkpoint is a servable supervised checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from plusultra_core.errors import ConfigError
from plusultra_core.inference.predict import load_supervised, predict_frame
from plusultra_core.rl import ActorCritic, RLConfig, build_env, embed_all, load_rl_config, run_rl
from plusultra_core.training.checkpoints import read_sidecar
from tests.core.rl.conftest import CONTEXT, FRICTIONS
from plusultra_core.rl.synthetic import FEATURES

REPO_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "rl.yaml"


def test_repository_config_loads():
    cfg = load_rl_config(REPO_CONFIG)
    assert isinstance(cfg, RLConfig) and cfg.simulator.impact_bps == 0 and cfg.simulator.max_participation is None


@pytest.mark.parametrize("text, match", [
    ("iterationz: 3\n", r"rl\.yaml: unknown key\(s\) 'iterationz'"),
    ("lr: fast\n", r"rl\.yaml: lr: expected a number, got 'fast'"),
    ("clip: 1.5\n", r"RLConfig\.clip must be a number in \(0, 1\)"),
    ("risk: cvar\n", r"RLConfig\.risk must be one of none, variance, downside"),
    ("rollout_bars: 1\n", r"RLConfig\.rollout_bars must be an integer >= 2"),
    ("simulator:\n  fee_bps: -1\n", r"rl\.yaml: simulator: invalid SimulatorConfig: SimulatorConfig\.fee_bps"),
    ("simulator:\n  spread: 1\n", r"rl\.yaml: simulator: unknown key\(s\) 'spread'"),
])
def test_config_errors_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "rl.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_rl_config(path)


def test_config_base_chain_and_null_position_limit(tmp_path):
    (tmp_path / "child.yaml").write_text(f"base: {REPO_CONFIG}\niterations: 2\nsimulator:\n  position_limit: null\n")
    cfg = load_rl_config(tmp_path / "child.yaml")
    assert cfg.iterations == 2 and cfg.simulator.position_limit == math.inf and cfg.simulator.fee_bps == 1.0
    assert cfg.to_dict()["simulator"]["position_limit"] is None


def test_volume_priced_frictions_need_volumes(planted):
    returns_only = planted.train.drop(columns=["close", "volume"])
    with pytest.raises(ConfigError, match="no close/volume"):
        build_env(returns_only, FEATURES, context_length=CONTEXT, zscore=False, simulator=FRICTIONS)


def test_rl_checkpoint_is_servable_and_records_its_parent(planted, tmp_path):
    cfg = load_rl_config({"iterations": 2, "eval_every": 1, "keep_best": False, "simulator": FRICTIONS})
    info = run_rl(planted.checkpoint, planted.train, cfg, tmp_path)
    assert info.path == tmp_path / "rl.pt"
    module, side = load_supervised(info.path)                        # the supervised format, unchanged
    parent = read_sidecar(planted.checkpoint)
    assert side["kind"] == "rl" and side["parent"] == str(planted.checkpoint)
    assert side["feature_hash"] == parent["feature_hash"] and side["head_config"] == parent["head_config"]
    assert side["rl_config"]["iterations"] == 2 and len(side["ppo"]["history"]) == 2
    assert set(side["metrics"]) >= {"rl/warm_net_sharpe", "rl/net_sharpe", "rl/turnover", "rl/cost"}
    # served positions are the PPO policy's mean action, decision for decision
    env = build_env(planted.train, FEATURES, context_length=CONTEXT, zscore=False, simulator=FRICTIONS)
    preds = predict_frame(module, planted.train, FEATURES, context_length=CONTEXT)
    ac = ActorCritic(module, 8)
    with torch.no_grad():
        mean = ac.mean_position(embed_all(module.backbone, env)).double().numpy()      # [S, T]
    s = np.searchsorted(env.symbols.astype(str), preds["symbol"].to_numpy())
    t = np.searchsorted(env.timestamps, preds["timestamp"].to_numpy())
    np.testing.assert_allclose(preds["position"].to_numpy(), mean[s, t], atol=1e-5)
    assert len(preds) == int(env.acting.sum())
