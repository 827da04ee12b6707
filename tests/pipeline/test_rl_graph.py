"""`training.rl_config` switches on `rl_checkpoint`: PPO after the supervised checkpoint of each
cutoff and seed, servable, checked like the other checkpoints, and scored in the same fold as its
own strategy (``<arch>/rl``) beside the supervised model and the baselines, then on the leaderboard."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dagster import AssetCheckKey, AssetKey, instance_for_test
from dagster._core.event_api import PartitionKeyFilter

from plusultra_core.evaluation import FoldResult
from plusultra_core.inference.predict import load_supervised
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.folds import load_leaderboard
from plusultra_pipeline.layout import FOLD_DATA, checkpoint_path, fold_dir
from plusultra_pipeline.runner import keys_between, materialize_graph, partition_keys
from tests.pipeline.conftest import ROOT, tiny_graph_settings

CUTOFF = "2002-01-01"   # the small synthetic database runs 2000-01-03 .. 2002-04
# short lookbacks: every feature is valid within weeks of the data's start, so a 2002 cutoff has windows
SHORT_FEATURES = ("ret_1d", "logret_1d", "mom_5", "mom_20", "vol_std_20", "rsi_14", "logvol_z_20")


@pytest.mark.slow
def test_rl_checkpoint_trained_served_and_scored_as_its_own_strategy(tmp_path, small_synth_db_path, copy_db):
    rl_yaml = tmp_path / "rl.yaml"  # a few PPO updates on short segments; the last iterate is kept
    rl_yaml.write_text(f"base: {ROOT / 'configs' / 'rl.yaml'}\niterations: 2\neval_every: 1\nkeep_best: false\n"
                       "rollout_bars: 64\nsegments: 2\nepochs: 2\n")
    settings = tiny_graph_settings(copy_db(small_synth_db_path), tmp_path, (CUTOFF, CUTOFF), (CUTOFF, CUTOFF), (0,))
    settings = replace(settings, history=replace(settings.history, start="2000"),
                       features=replace(settings.features, names=SHORT_FEATURES),
                       evaluation=replace(settings.evaluation, benchmark=None),   # the database's own
                       training=replace(settings.training, rl_config=str(rl_yaml), validation_months=6))
    defs = build_definitions(settings)
    with instance_for_test() as instance:
        cutoffs = keys_between(partition_keys(defs, "rl_checkpoint"), CUTOFF, CUTOFF)
        report = materialize_graph(instance, defs, settings, lookback_periods(settings), cutoffs, [],
                                   say=lambda _: None)
        assert report.trained == [CUTOFF] and report.evaluated == [CUTOFF] and report.leaderboard_run
        for check in ("weights_finite", "sidecar_matches_partition"):   # the other checkpoints' checks
            history = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey("rl_checkpoint"), check), limit=1, partition_filter=PartitionKeyFilter(key=CUTOFF))
            assert history and history[0].event.dagster_event.event_specific_data.passed, check
        again = materialize_graph(instance, defs, settings, lookback_periods(settings), cutoffs, [],
                                  say=lambda _: None)
        assert not again.trained and not again.evaluated          # RL's code version is stable

    rl_path = checkpoint_path(settings.store_path, "rl", CUTOFF, 0)
    module, side = load_supervised(rl_path)                        # servable like a supervised one
    parent = checkpoint_path(settings.store_path, "supervised", CUTOFF, 0)
    assert side["kind"] == "rl" and side["parent"] == str(parent) and side["cutoff"] == CUTOFF
    assert side["ppo"]["fit_bars"] > 0 and len(side["ppo"]["history"]) == 2
    fold = FoldResult.from_files(fold_dir(settings.store_path, CUTOFF) / FOLD_DATA)
    arch = side["architecture"]
    assert fold.model_strategies == [arch] and fold.model_name == arch
    assert f"{arch}/rl" in fold.strategies and {"buy_and_hold", "momentum", "linear"} <= set(fold.strategies)
    decisions = fold.decisions.set_index(["strategy", "symbol", "timestamp"])["position"]
    supervised, rl = decisions.loc[arch], decisions.loc[f"{arch}/rl"]
    assert supervised.index.equals(rl.index) and not supervised.equals(rl)   # same symbol-days, own decisions
    assert f"{arch}/rl" in fold.metrics.index
    board, _, _ = load_leaderboard(settings, settings.store_path)                       # the leaderboard ranks it too
    assert {arch, f"{arch}/rl", "buy_and_hold"} <= set(board.table.index)
