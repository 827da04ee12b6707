"""The history graph and one training cutoff on a Dagster instance built from deploy/dagster.yaml,
backed by a real PostgreSQL server on loopback; then the runs, materialisations and asset-check
evaluations are read back from Postgres itself (SQL) and through a second instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterRunStatus

from plusultra_core.data.store import ParquetStore
from plusultra_core.errors import ConfigError
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.deployment import INSTANCE_YAML, check_instance_env, instance_at
from plusultra_pipeline.runner import (keys_between, materialize_history, partition_keys, plan_history,
                                       refresh_training_sets, run_partitioned)
from tests.pipeline.conftest import tiny_graph_settings

ROOT = Path(__file__).resolve().parents[2]
CUTOFF = "2018-01-01"
HISTORY = ("validated_bars", "feature_panel", "window_tensors")
CHECKPOINTS = ("pretrained_checkpoint", "supervised_checkpoint")


def deployment_home(tmp: Path) -> Path:
    """A $DAGSTER_HOME holding deploy/dagster.yaml, as a deployment's image does."""
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_YAML, home / "dagster.yaml")
    return home


@pytest.fixture(scope="module")
def pg_graph(postgres, tmp_path_factory, demo_db_path):
    tmp = tmp_path_factory.mktemp("pg_graph")
    settings = tiny_graph_settings(demo_db_path, tmp, (CUTOFF, CUTOFF), ("2018-01-02", "2018-01-02"), seeds=(0,),
                                   history_start="2010")
    defs = build_definitions(settings)
    home = deployment_home(tmp)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in postgres.env.items():
            mp.setenv(name, value)
        instance = instance_at(home)
        lookback = lookback_periods(settings)
        t0 = time.perf_counter()
        history = materialize_history(instance, defs, settings, lookback)
        t1 = time.perf_counter()
        training_set_run = refresh_training_sets(instance, defs)
        (cutoff,) = keys_between(partition_keys(defs, "supervised_checkpoint"), CUTOFF, CUTOFF)
        training_runs = run_partitioned(instance, defs, "training_job", [cutoff], single_run=False)
        t2 = time.perf_counter()
        print(f"\npostgres instance: history {t1 - t0:.1f} s ({len(history.run_ids)} runs), "
              f"training_set + one cutoff {t2 - t1:.1f} s")
        yield {"instance": instance, "home": home, "defs": defs, "settings": settings, "lookback": lookback,
               "cutoff": cutoff, "history_runs": history.run_ids, "training_set_run": training_set_run,
               "training_runs": training_runs, "server": postgres}
        instance.dispose()


def rows(server, sql: str, *args) -> list[tuple]:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def test_instance_storage_is_postgres(pg_graph):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    instance = pg_graph["instance"]
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)


def test_runs_are_rows_in_postgres(pg_graph):
    g = pg_graph
    ours = [*g["history_runs"], g["training_set_run"], *g["training_runs"]]
    assert len(g["history_runs"]) >= 1 and len(g["training_runs"]) == 1
    stored = dict(rows(g["server"], "SELECT run_id, status FROM runs"))
    assert all(stored.get(run_id) == "SUCCESS" for run_id in ours), {r: stored.get(r) for r in ours}
    jobs = {name for (name,) in rows(g["server"], "SELECT DISTINCT pipeline_name FROM runs")}
    assert {"history_job", "training_set_job", "training_job"} <= jobs
    stage = dict(rows(g["server"], "SELECT run_id, value FROM run_tags WHERE key = 'plusultra/stage'"))
    assert stage[g["training_runs"][0]] == "training" and stage[g["history_runs"][0]] == "history"


def test_materialisations_are_rows_in_postgres(pg_graph):
    g = pg_graph
    found = rows(g["server"], "SELECT asset_key, partition FROM event_logs "
                              "WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
    by_asset: dict[str, set] = {}
    for key, partition in found:
        by_asset.setdefault(json.loads(key)[0], set()).add(partition)
    store = ParquetStore(g["settings"].store_path)
    stored = {f"{p['period']}|{p['shard']}" for p in store.list_partitions("validated_bars")}
    assert len(stored) > 20  # three symbols over the yearly partitions from 2010
    for asset in HISTORY:
        assert by_asset[asset] == stored, asset  # one event per partition, each with its own key
    assert g["cutoff"] in by_asset["training_set"]
    for asset in CHECKPOINTS:
        assert by_asset[asset] == {g["cutoff"]}, asset
    # the same facts through Dagster's API on this instance
    assert g["instance"].get_materialized_partitions(AssetKey("window_tensors")) == stored


def test_asset_check_evaluations_are_rows_in_postgres(pg_graph):
    g = pg_graph
    found = rows(g["server"], "SELECT asset_key, check_name, execution_status FROM asset_check_executions")
    status = {(json.loads(key)[0], name): s for key, name, s in found}
    for check in ("pandera_contract", "row_count_matches_source"):
        assert status[("validated_bars", check)] == "SUCCEEDED", check
    assert {s for s in status.values()} == {"SUCCEEDED"}, status
    checked_assets = {asset for asset, _ in status}
    assert set(HISTORY) <= checked_assets
    record = g["instance"].get_latest_asset_check_evaluation_record(
        AssetCheckKey(AssetKey("validated_bars"), "pandera_contract"))
    assert record.status.value == "SUCCEEDED"


def test_a_fresh_instance_reads_the_same_state_and_plans_nothing(pg_graph, monkeypatch):
    g = pg_graph
    for name, value in g["server"].env.items():
        monkeypatch.setenv(name, value)
    other = instance_at(g["home"])  # a new process's view: nothing held in memory
    try:
        runs = other.get_runs()
        assert {r.run_id for r in runs} >= {*g["history_runs"], *g["training_runs"]}
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        # staleness judged from the Postgres event log: the history is current
        assert plan_history(other, g["defs"], g["settings"], g["lookback"])[1] == []
    finally:
        other.dispose()


def test_run_queue_limits_name_tags_the_jobs_carry(pg_graph):
    from dagster._core.run_coordinator import QueuedRunCoordinator

    instance = pg_graph["instance"]
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    assert {(l["key"], l["value"]): l["limit"] for l in limits} == {
        ("plusultra/stage", "training"): 2, ("plusultra/stage", "history"): 1}
    tags = {(k, v) for job in pg_graph["defs"].resolve_all_job_defs() for k, v in job.tags.items()}
    assert {(l["key"], l["value"]) for l in limits} <= tags  # a renamed tag would lift the limit silently


def test_missing_connection_variable_is_named(tmp_path):
    env = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "u", "DAGSTER_PG_DB": "d"}
    with pytest.raises(ConfigError, match=r"DAGSTER_PG_PASSWORD not set") as err:
        check_instance_env(INSTANCE_YAML, env)
    assert "\n" not in str(err.value)
    assert check_instance_env(INSTANCE_YAML, {**env, "DAGSTER_PG_PASSWORD": "p"}) == [
        "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"]


def _cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "plusultra_pipeline.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_cli_on_the_postgres_instance(postgres, tmp_path, demo_db_path):
    """`plusultra materialize` with deploy/dagster.yaml in $DAGSTER_HOME: one line naming a missing
    variable, and a dry run against the real server once the variables are set."""
    home = deployment_home(tmp_path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PG_")}
    base.update(DAGSTER_HOME=str(home), PLUSULTRA_HOME=str(tmp_path / "home"),
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    partial = {**base, **{k: v for k, v in postgres.env.items() if k != "DAGSTER_PG_HOST"}}
    out = _cli(["materialize", "--db", str(demo_db_path), "--dry-run"], partial, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "DAGSTER_PG_HOST not set" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    ok = _cli(["materialize", "--db", str(demo_db_path), "--dry-run"], {**base, **postgres.env}, tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "history partitions missing or stale" in ok.stdout
    # the dry run observed the database: its observation runs are in this server's run storage
    jobs = {name for (name,) in rows(postgres, "SELECT DISTINCT pipeline_name FROM runs")}
    assert "observe_market_db_job" in jobs


def test_executor_and_gpu_tags_come_from_the_environment():
    from dagster import multi_or_in_process_executor

    from plusultra_pipeline.executors import executor_from_env, training_op_tags

    assert executor_from_env({}) is multi_or_in_process_executor
    for name, package in (("k8s", "dagster-k8s"), ("celery", "dagster-celery")):
        try:
            assert executor_from_env({"PLUSULTRA_EXECUTOR": name}).name in ("k8s", "celery")
        except ConfigError as err:  # the optional integration is not installed here: named in one line
            assert f"needs the {package} package" in str(err) and "\n" not in str(err)
    with pytest.raises(ConfigError, match="is not an executor; choose one of default, k8s, celery"):
        executor_from_env({"PLUSULTRA_EXECUTOR": "ray"})
    assert training_op_tags({}) == {}
    tags = training_op_tags({"PLUSULTRA_TRAINING_GPUS": "2"})
    assert tags["dagster-k8s/config"]["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": 2}
    with pytest.raises(ConfigError, match="whole number of GPUs"):
        training_op_tags({"PLUSULTRA_TRAINING_GPUS": "one"})


def test_deploy_files_state_the_same_queue_and_pinned_versions():
    import yaml

    instance = yaml.safe_load(INSTANCE_YAML.read_text())
    helm = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    queue = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert queue["maxConcurrentRuns"] == instance["run_coordinator"]["config"]["max_concurrent_runs"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    celery = yaml.safe_load((ROOT / "deploy" / "celery.yaml").read_text())["execution"]["config"]
    assert set(celery) <= {"broker", "backend", "include", "config_source", "retries"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ("dagster-postgres", "dagster-k8s", "dagster-celery"):
        assert f'"{package}==0.29.27"' in pyproject, package  # the integration release of dagster 1.13.27
    assert '"dagster==1.13.27"' in pyproject
