"""The Definitions load and contain exactly the expected assets, checks, jobs and sensors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, Definitions

from plusultra_pipeline.definitions import build_definitions, defs
from plusultra_pipeline.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_ASSETS = {"market_db", "validated_bars", "feature_panel", "window_tensors", "training_set",
                   "pretrained_checkpoint", "supervised_checkpoint", "evaluation_report", "leaderboard",
                   "inference_frames", "trade_reconciliation", "executed_trades"}
EXPECTED_CHECKS = {
    ("validated_bars", "pandera_contract"),
    ("validated_bars", "row_count_matches_source"),
    ("feature_panel", "feature_nan_ratio"),
    ("window_tensors", "window_values_finite"),
    ("pretrained_checkpoint", "weights_finite"),
    ("pretrained_checkpoint", "sidecar_matches_partition"),
    ("supervised_checkpoint", "weights_finite"),
    ("supervised_checkpoint", "sidecar_matches_partition"),
    ("evaluation_report", "fold_coverage"),
    ("inference_frames", "one_row_per_tradable_symbol"),
    ("inference_frames", "positions_in_range"),
    ("trade_reconciliation", "fills_on_the_proposed_side"),
}
EXPECTED_JOBS = {"observe_market_db_job", "history_job", "training_set_job", "training_job", "evaluation_job",
                 "leaderboard_job", "inference_job", "reconciliation_job", "observe_trades_job"}
EXPECTED_SENSORS = {"symbols_sensor", "market_db_sensor"}
EXPECTED_SCHEDULES = {"retraining_schedule", "evaluation_schedule", "daily_inference_schedule",
                      "daily_reconciliation_schedule"}


def test_definitions_validate():
    Definitions.validate_loadable(defs)


def test_asset_keys_checks_jobs_sensors_schedules():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    jobs = {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}
    assert jobs == EXPECTED_JOBS
    assert {s.name for s in defs.sensors} == EXPECTED_SENSORS
    assert {s.name for s in (defs.schedules or [])} == EXPECTED_SCHEDULES


def test_contract_check_is_blocking():
    graph = defs.resolve_asset_graph()
    spec = graph.get_check_spec(AssetCheckKey(AssetKey("validated_bars"), "pandera_contract"))
    assert spec.blocking


def test_schedules_and_sensors_default_to_stopped():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert all(s.default_status == DefaultScheduleStatus.STOPPED for s in defs.schedules)
    assert all(s.default_status == DefaultSensorStatus.STOPPED for s in defs.sensors)


def test_checks_on_partitioned_assets_are_partitioned():
    graph = defs.resolve_asset_graph()
    for key in graph.asset_check_keys:
        asset = graph.get(key.asset_key)
        if asset.partitions_def is not None:
            assert graph.get_check_spec(key).partitions_def == asset.partitions_def, key


def test_every_computed_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        assert graph.get(key).code_version, key.to_user_string()


def test_history_lookback_is_a_partition_mapping():
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(AssetKey("feature_panel"), AssetKey("validated_bars"))
    # 252-row features need two years: the previous year can have only 251 sessions
    assert "TimeWindowPartitionMapping" in repr(mapping) and "start_offset=-2" in repr(mapping)


def test_cross_sectional_features_read_every_shard():
    """The default selection ranks across symbols: each feature partition depends on every shard's
    bars of its period window (honest lineage); without ranks, only on its own shard's."""
    from dataclasses import replace

    from dagster import AllPartitionMapping, IdentityPartitionMapping

    def symbol_mapping(settings):
        graph = build_definitions(settings).resolve_asset_graph()
        mapping = graph.get_partition_mapping(AssetKey("feature_panel"), AssetKey("validated_bars"))
        return mapping.downstream_mappings_by_upstream_dimension["symbol"].partition_mapping

    settings = load_settings(environ={})
    assert isinstance(symbol_mapping(settings), AllPartitionMapping)
    local = replace(settings, features=replace(settings.features, tags=("momentum",), exclude=()))
    assert isinstance(symbol_mapping(local), IdentityPartitionMapping)


def test_settings_unknown_key_names_key_and_file(tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("database: x.sqlite\nhistroy:\n  period: year\n")
    try:
        load_settings(bad)
    except Exception as exc:  # ConfigError
        assert "histroy" in str(exc) and str(bad) in str(exc)
    else:
        raise AssertionError("unknown key accepted")


def test_sharded_settings_build(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("base: %s\nsharding:\n  mode: hash\n  buckets: 8\nhistory:\n  period: quarter\n  start: '2000-01'\n"
                   % (ROOT / "configs" / "pipeline.yaml"))
    d = build_definitions(load_settings(cfg))
    Definitions.validate_loadable(d)


def test_dagster_definitions_validate_cli(tmp_path):
    """`dagster definitions validate` (what users and CI run) passes on the project module."""
    exe = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # the CLI wants an existing instance directory
    proc = subprocess.run([str(exe), "definitions", "validate", "-m", "plusultra_pipeline.definitions"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rl_switch_adds_rl_checkpoint_and_changes_nothing_else():
    """``training.rl_config`` adds `rl_checkpoint` (with the checkpoints' checks) between the
    supervised checkpoint and the fold report; the other assets keep their code versions, except
    the fold report and leaderboard, which now score the RL strategy too."""
    from dataclasses import replace

    settings = load_settings(environ={})
    on = replace(settings, training=replace(settings.training, rl_config="configs/rl.yaml"))
    graph, rl_graph = defs.resolve_asset_graph(), build_definitions(on).resolve_asset_graph()
    rl = AssetKey("rl_checkpoint")
    assert set(rl_graph.get_all_asset_keys()) - set(graph.get_all_asset_keys()) == {rl}
    assert {k.name for k in rl_graph.asset_check_keys if k.asset_key == rl} == {"weights_finite",
                                                                                "sidecar_matches_partition"}
    assert rl_graph.get(rl).parent_keys == {AssetKey("supervised_checkpoint"), AssetKey("training_set")}
    assert rl in rl_graph.get(AssetKey("evaluation_report")).parent_keys
    changed = {k.to_user_string() for k in graph.materializable_asset_keys
               if graph.get(k).code_version != rl_graph.get(k).code_version}
    assert changed == {"evaluation_report", "leaderboard"}
    assert rl_graph.get(rl).code_version


def test_without_pretraining_supervised_models_start_cold(tmp_path):
    """``training.pretrain: false``: no pretrained checkpoint (nor its checks) in the graph, the
    training job trains the supervised checkpoint alone, and each run's config has no parent."""
    from dataclasses import replace

    from plusultra_pipeline.stage_config import cutoff_config

    settings = load_settings(environ={})
    cold = replace(settings, store_root=str(tmp_path / "store"),
                   training=replace(settings.training, pretrain=False))
    d = build_definitions(cold)
    Definitions.validate_loadable(d)
    graph = d.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS - {"pretrained_checkpoint"}
    assert {k.asset_key.to_user_string() for k in graph.asset_check_keys} == {
        a for a, _ in EXPECTED_CHECKS} - {"pretrained_checkpoint"}
    assert {k.to_user_string() for k in graph.get(AssetKey("supervised_checkpoint")).parent_keys} == {"training_set"}
    job = d.resolve_job_def("training_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"supervised_checkpoint"}
    assert cutoff_config("train", cold, "2018-01-01", 0, ["ret_1d"]).pretrained is None
    warm = cutoff_config("train", replace(cold, training=settings.training), "2018-01-01", 0, ["ret_1d"])
    assert warm.pretrained and "pretrained" in warm.pretrained


def test_assets_find_the_store_through_the_store_resource_only():
    """Every asset reads and writes the artifact store at its `store` resource's root (paths from
    `layout`), never at a root of its own from the settings: a run configured with another store
    root moves every artifact, not some."""
    package = ROOT / "plusultra_pipeline"
    asset_code = [*(package / "assets").glob("*.py"),   # the assets and the modules that do their work
                  *(package / name for name in ("folds.py", "inferring.py", "reconciliation_days.py",
                                                "reconciling.py", "cutoff_training.py"))]
    offenders = {p.name for p in asset_code if "settings.store_path" in p.read_text()}
    assert offenders == set()
    uses = {p.name for p in (ROOT / "plusultra_pipeline" / "assets").glob("*.py") if "PartitionStore" in p.read_text()}
    assert {"training.py", "evaluation.py", "inference.py", "features.py", "reconciliation.py"} <= uses


def test_loading_the_definitions_imports_no_torch_lightning_or_heavy_scipy():
    """Every CLI command, the code server and each multiprocess step load the definitions first:
    model configs come from `plusultra_core.models.configs` and scipy's submodules load where a
    computation uses them, so loading them costs Dagster's and pandas' imports only."""
    heavy = ("torch", "lightning", "pytorch_lightning", "scipy.signal", "scipy.stats", "scipy.ndimage")
    code = ("import sys, plusultra_pipeline.definitions; "
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"loaded by the definitions: {out.stdout.strip()}"
