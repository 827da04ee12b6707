"""The history graph with Dagster's multiprocess executor, partitions in parallel across processes
(`plusultra_pipeline.parallel`), stores exactly what the in-process run stores: the same
partitions with the same content hashes and the same Dagster data versions, every step having run
in a process of its own."""

from __future__ import annotations

import hashlib
import os
import time

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, EventRecordsFilter, instance_for_test

from plusultra_core.data.store import ParquetStore
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.incremental import RunPlan, parallel_waves
from plusultra_pipeline.runner import materialize_history
from tests.pipeline.conftest import settings_for

HISTORY = ("validated_bars", "feature_panel", "window_tensors")


def content(store: ParquetStore, asset: str) -> dict[str, str]:
    """``period|shard -> sha256`` of each stored partition's rows (the Parquet footer carries a
    random write id, so the file bytes differ by design; the rows must not)."""
    out = {}
    for part in store.list_partitions(asset):
        frame = store.read(asset, [part]).reset_index(drop=True)
        digest = hashlib.sha256(repr(list(zip(frame.columns, map(str, frame.dtypes)))).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        out[f"{part['period']}|{part['shard']}"] = digest.hexdigest()
    return out


def events(instance, asset: str, kind=DagsterEventType.ASSET_MATERIALIZATION):
    return [r.event_log_entry for r in instance.get_event_records(EventRecordsFilter(kind, asset_key=AssetKey(asset)))]


def data_versions(instance, asset: str) -> dict[str, str]:
    return {e.dagster_event.partition: e.dagster_event.step_materialization_data.materialization.tags["dagster/data_version"]
            for e in events(instance, asset)}


@pytest.fixture(scope="module")
def both(tmp_path_factory, small_synth_db_path):
    out = {}
    for mode, processes in (("in_process", 1), ("multiprocess", 2)):
        tmp = tmp_path_factory.mktemp(mode)
        settings = settings_for(small_synth_db_path, tmp / "store")
        defs = build_definitions(settings)
        (tmp / "dagster_home").mkdir()
        with instance_for_test(temp_dir=str(tmp / "dagster_home")) as instance:
            t0 = time.perf_counter()
            report = materialize_history(instance, defs, settings, lookback_periods(settings), processes=processes)
            seconds = time.perf_counter() - t0
            store = ParquetStore(settings.store_path)
            out[mode] = {"seconds": seconds, "report": report,
                         "content": {a: content(store, a) for a in HISTORY},
                         "versions": {a: data_versions(instance, a) for a in HISTORY},
                         "pids": {e.dagster_event.pid for run_id in report.run_ids
                                  for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)},
                         "runs": list(instance.get_runs())}
    print(f"\nhistory of {len(out['in_process']['content']['validated_bars'])} partitions: in-process "
          f"{out['in_process']['seconds']:.1f} s ({len(out['in_process']['report'].run_ids)} runs), multiprocess x2 "
          f"{out['multiprocess']['seconds']:.1f} s ({len(out['multiprocess']['report'].run_ids)} runs)")
    return out


@pytest.mark.slow
def test_multiprocess_stores_what_in_process_stores(both):
    a, b = both["in_process"], both["multiprocess"]
    for asset in HISTORY:
        assert len(a["content"][asset]) >= 12, asset  # 6 symbols x 3 years
        assert b["content"][asset] == a["content"][asset], asset
        assert b["versions"][asset] == a["versions"][asset], asset
        assert set(a["versions"][asset]) == set(a["content"][asset])  # one event per stored partition


@pytest.mark.slow
def test_steps_ran_in_their_own_processes_in_parallel(both):
    b = both["multiprocess"]
    assert len(b["report"].run_ids) > len(both["in_process"]["report"].run_ids)  # the boxes were cut
    assert os.getpid() not in b["pids"] and len(b["pids"]) == len(b["report"].run_ids)  # a process per step
    assert os.getpid() in both["in_process"]["pids"]
    by_id = {r.run_id: r for r in b["runs"]}
    assert all(by_id[r].status.value == "SUCCESS" for r in b["report"].run_ids)
    assert all(by_id[r].run_config["execution"]["config"]["multiprocess"] == {"max_concurrent": 1}
               for r in b["report"].run_ids)


def test_parallel_waves_cut_shards_and_keep_cross_sectional_bars_first():
    shards = ["A", "B", "C", "D", "E"]
    plan = RunPlan(HISTORY, ("2001", "2003"), ("A", "E"))
    (wave,) = parallel_waves([plan], shards, 2)
    assert [p.shard_range for p in wave] == [("A", "B"), ("C", "E")]
    assert all(p.period_range == ("2001", "2003") and p.assets == HISTORY for p in wave)
    bars, features = parallel_waves([plan], shards, 3, cross_sectional=True)
    assert {p.assets for p in bars} == {("validated_bars",)} and len(bars) == 3
    assert {p.assets for p in features} == {("feature_panel", "window_tensors")}
    assert parallel_waves([RunPlan(HISTORY, ("2001", "2001"), ("B", "B"))], shards, 4) == [
        [RunPlan(HISTORY, ("2001", "2001"), ("B", "B"))]]
