"""End to end on the real demo database with a tiny model: every asset of the graph, reports
that can be recomputed from their saved positions, walk-forward without overlap, schedules and
sensors, incremental requests after a new trading day, and lineage down to the data version."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    EventRecordsFilter,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from plusultra_core import metrics
from plusultra_core.data.demo_db import append_trading_day
from plusultra_core.data.store import ParquetStore
from plusultra_pipeline.layout import FOLD_DATA, checkpoint_path, fold_dir, leaderboard_dir
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.runner import keys_between, materialize_graph, partition_keys
from tests.pipeline.conftest import tiny_graph_settings

SEEDS = (0, 1)
CUTOFFS = ("2018-01-01", "2018-02-01")
DAYS = ("2018-01-02", "2018-02-06")  # served by both cutoffs
ALL_ASSETS = {"validated_bars", "feature_panel", "window_tensors", "pretrained_checkpoint",
              "supervised_checkpoint", "evaluation_report", "leaderboard", "inference_frames",
              "trade_reconciliation"}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from plusultra_core.data.demo_db import build_demo_database

    tmp = tmp_path_factory.mktemp("graph")
    db = tmp / "demo.sqlite"
    build_demo_database(db)
    settings = tiny_graph_settings(db, tmp, CUTOFFS, DAYS, SEEDS, history_start="2012")
    defs = build_definitions(settings)
    with instance_for_test() as instance:
        cutoffs = keys_between(partition_keys(defs, "supervised_checkpoint"), *CUTOFFS)
        days = keys_between(partition_keys(defs, "inference_frames"), *DAYS)
        report = materialize_graph(instance, defs, settings, lookback_periods(settings), cutoffs, days,
                                   say=lambda _: None)
        yield {"settings": settings, "defs": defs, "instance": instance, "report": report,
               "cutoffs": cutoffs, "days": days, "db": db}


def materialized(instance, asset: str) -> set:
    records = instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION,
                                                            asset_key=AssetKey(asset)))
    return {r.event_log_entry.dagster_event.partition for r in records}


def test_every_asset_materialises(graph):
    instance = graph["instance"]
    for asset in ALL_ASSETS:
        assert materialized(instance, asset), asset
    assert materialized(instance, "supervised_checkpoint") == set(graph["cutoffs"])
    assert materialized(instance, "evaluation_report") == set(graph["cutoffs"])
    assert materialized(instance, "inference_frames") == set(graph["days"])
    assert materialized(instance, "trade_reconciliation") == set(graph["days"])


def test_rerun_recomputes_nothing(graph):
    g = graph
    again = materialize_graph(g["instance"], g["defs"], g["settings"], lookback_periods(g["settings"]),
                              g["cutoffs"], g["days"], say=lambda _: None)
    assert not again.history.run_ids and not again.trained and not again.evaluated
    assert not again.inferred and not again.reconciled and again.leaderboard_run is None


def test_no_fold_trains_on_its_evaluation_period(graph):
    from plusultra_core.training.checkpoints import read_sidecar

    store_root = graph["settings"].store_path
    for cutoff in graph["cutoffs"]:
        for kind in ("pretrained", "supervised"):
            for seed in SEEDS:
                side = read_sidecar(checkpoint_path(store_root, kind, cutoff, seed))
                assert side["seed"] == seed and side["config"]["trainer"]["seed"] == seed
                assert pd.Timestamp(side["train_range"][1]) < pd.Timestamp(cutoff), (kind, cutoff)
                assert side["data_range"]["end"] < cutoff
                # the cutoff defines the split: fit ends 12 months before it, validation follows
                fit_end = pd.Timestamp(side["fit_range"][1])
                assert fit_end == pd.Timestamp(cutoff) - pd.DateOffset(months=12) - pd.Timedelta(days=1)
                assert pd.Timestamp(side["splits"]["train"]["last_target"]) <= fit_end
                assert pd.Timestamp(side["splits"]["val"]["first_target"]) > fit_end
                assert "test" not in side["splits"]
        fold = json.loads((fold_dir(store_root, cutoff) / "lineage.json").read_text())
        assert pd.Timestamp(fold["train_range"][1]) < pd.Timestamp(fold["oos_period"][0])


def test_report_numbers_equal_metrics_recomputed_from_saved_positions(graph):
    from plusultra_core.losses import pnl_stream

    store_root = graph["settings"].store_path
    cost = graph["settings"].evaluation.cost_bps * 1e-4
    for cutoff in graph["cutoffs"]:
        data = fold_dir(store_root, cutoff) / FOLD_DATA
        book = pd.read_parquet(data / "positions.parquet")
        reported = pd.read_csv(data / "metrics.csv", index_col=0)
        for strategy, rows in book.groupby("strategy"):
            # per symbol: pnl = position * next-bar return - cost * |Δposition| (entry from flat)
            pnl = []
            for _, sym in rows.sort_values("timestamp").groupby("symbol"):
                p = sym["position"].to_numpy()
                pnl.append(pd.Series(pnl_stream(p, sym["realised_return"].to_numpy(), cost),
                                     index=sym["realised_at"].to_numpy()))
            daily = pd.concat(pnl, axis=1).mean(axis=1).sort_index()
            assert metrics.sharpe_ratio(daily.to_numpy()) == pytest.approx(reported.loc[strategy, "sharpe_ratio"],
                                                                           rel=1e-6, abs=1e-9)
            assert metrics.max_drawdown(daily.to_numpy()) == pytest.approx(reported.loc[strategy, "max_drawdown"],
                                                                           rel=1e-6, abs=1e-12)


def test_agent_frames_equal_the_asset(graph):
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    store = ParquetStore(graph["settings"].store_path)
    day = graph["days"][5]
    stored = store.read("inference_frames", [{"day": day}])
    members = store.read_metadata("inference_frames", {"day": day})["metadata"]["checkpoints"]
    assert len(members) == len(SEEDS)  # the day is served by its cutoff's seed ensemble
    agent = MarketNNPlusUltraAgent.from_checkpoints(members).predict(graph["db"], start=day)
    mine = agent.frame.sort_values("symbol").reset_index(drop=True)
    theirs = stored.drop(columns=[c for c in ("day",) if c in stored]).sort_values("symbol").reset_index(drop=True)
    assert len(mine) == len(theirs) > 0
    for col in ("p_sell", "p_hold", "p_buy", "position", "expected_return"):
        np.testing.assert_allclose(mine[col].to_numpy(), theirs[col].to_numpy(), rtol=1e-6, atol=1e-9)


def test_lineage_of_an_inference_day_reaches_the_data_version(graph):
    from plusultra_core.lineage import lineage_of_day

    chain = lineage_of_day(graph["settings"].store_path, graph["days"][3])
    text = json.dumps(chain, default=str)
    assert "supervised" in text and "pretrained" in text
    assert any(node.get("data_version") for node in chain)


def test_schedules_request_the_expected_partitions(graph):
    """Schedules ask for the newest partition the data reaches, and skip with a reason when it is
    done (the fixture trained cutoffs 2018-01/02 and inferred 2018-01-02..02-06)."""
    defs = graph["defs"]
    repo = defs.get_repository_def()
    instance = graph["instance"]

    def tick(name, when):
        ctx = build_schedule_context(instance=instance, repository_def=repo,
                                     scheduled_execution_time=pd.Timestamp(when, tz="UTC"))
        return defs.get_schedule_def(name).evaluate_tick(ctx)

    assert [r.partition_key for r in tick("retraining_schedule", "2018-03-01 06:00").run_requests] == ["2018-03-01"]
    done = tick("retraining_schedule", "2018-02-01 06:00")
    assert not done.run_requests and "already materialised" in done.skip_message
    # years after the data ends: the newest cutoff the data reaches, never today's
    assert [r.partition_key for r in tick("retraining_schedule", "2026-12-01 06:00").run_requests] == ["2018-12-01"]
    assert [r.partition_key for r in tick("evaluation_schedule", "2018-04-01 07:00").run_requests] == ["2018-03-01"]
    assert not tick("evaluation_schedule", "2018-03-01 07:00").run_requests  # fold 2018-02 is evaluated
    assert [r.partition_key for r in tick("daily_inference_schedule", "2018-02-08 22:00").run_requests] == ["2018-02-08"]
    assert not tick("daily_inference_schedule", "2018-01-17 22:00").run_requests  # inferred already
    # 2018-02-19 (Presidents' Day) has no bars: the newest trading day before it is asked for
    holiday = tick("daily_inference_schedule", "2018-02-19 22:00").run_requests
    assert [r.partition_key for r in holiday] == ["2018-02-16"]
    # reconciliation: the newest day's fills execute the decision of the trading day before it
    assert [r.partition_key for r in tick("daily_reconciliation_schedule", "2018-02-08 22:30").run_requests] \
        == ["2018-02-07"]
    assert not tick("daily_reconciliation_schedule", "2018-01-17 22:30").run_requests  # reconciled already
    assert [r.partition_key for r in tick("daily_reconciliation_schedule", "2018-02-20 22:30").run_requests] \
        == ["2018-02-16"]  # across Presidents' Day


def test_new_trading_day_requests_only_its_partitions(graph, copy_db):
    g = graph
    db = copy_db(g["db"])
    settings = replace(g["settings"], database=str(db))
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def("market_db_sensor")
    repo = defs.get_repository_def()
    ctx = build_sensor_context(instance=g["instance"], resources=defs.resources, repository_def=repo)
    first = sensor.evaluate_tick(ctx)
    assert not first.run_requests and first.cursor == "2018-12-31"  # nothing changed yet
    day = append_trading_day(db)
    defs = build_definitions(settings)  # the code location reloads: partitions now reach the new day
    sensor, repo = defs.get_sensor_def("market_db_sensor"), defs.get_repository_def()
    result = sensor.evaluate_tick(build_sensor_context(instance=g["instance"], resources=defs.resources,
                                                       repository_def=repo, cursor=first.cursor))
    history = [r for r in result.run_requests if r.job_name == "history_job"]
    inference = [r for r in result.run_requests if r.job_name == "inference_job"]
    year = str(day.year)
    assert len(history) == 1
    tags = history[0].tags
    assert tags["dagster/asset_partition_range_start"].startswith(f"{year}|")
    assert tags["dagster/asset_partition_range_end"].startswith(f"{year}|")
    assert [r.partition_key for r in inference] == [str(day.date())]


def test_chained_record_scores_every_trading_day_once_with_a_verdict(graph):
    """The leaderboard's decisions are exactly the database's trading days of the folds (the last
    day of the first fold included), each once; the report opens with the verdict."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_pipeline.folds import load_leaderboard

    board, dirs, trials = load_leaderboard(graph["settings"], graph["settings"].store_path)
    assert len(dirs) == len(graph["cutoffs"])
    panel = SQLiteMarketDataset(graph["db"]).load_panel(start="2018-01-01", end="2018-02-28")
    trading = pd.DatetimeIndex(sorted(set(panel.index.get_level_values("timestamp"))))
    primary = board.positions[board.positions["strategy"] == board.model_name]
    decided = pd.DatetimeIndex(sorted(set(primary["timestamp"])))
    assert list(decided) == list(trading)
    assert not primary.duplicated(["symbol", "timestamp"]).any()
    assert pd.Timestamp("2018-01-31") in decided                   # a fold's last day is scored
    assert board.model_name == "temporal_hybrid/ensemble"
    assert set(board.model_strategies) == {f"temporal_hybrid/seed={s}" for s in SEEDS}
    # trials: two seeds and their ensemble, one configuration each
    assert trials.n_trials == 3 and trials.sharpe_variance is not None
    report = (leaderboard_dir(graph["settings"].store_path) / "leaderboard.md").read_text()
    first = report.splitlines()[0]
    assert first.startswith("**temporal_hybrid/ensemble ") and "buy-and-hold" in first and "p = " in first
    assert (leaderboard_dir(graph["settings"].store_path) / "tearsheet.png").is_file()
    for cutoff in graph["cutoffs"]:
        fold_report = (fold_dir(graph["settings"].store_path, cutoff) / "report.md").read_text()
        assert fold_report.splitlines()[0].startswith("**temporal_hybrid/ensemble ")


def test_chained_returns_are_reproduced_from_raw_sqlite_closes(graph):
    """A probe outside the pipeline: the leaderboard's positions priced with the database's own
    closes (next close / close - 1) and the cost on |position change| give every chained day."""
    import sqlite3

    from plusultra_pipeline.folds import load_leaderboard

    board, _, _ = load_leaderboard(graph["settings"], graph["settings"].store_path)
    cost = graph["settings"].evaluation.cost_bps * 1e-4
    with sqlite3.connect(graph["db"]) as conn:
        closes = pd.read_sql("SELECT symbol, timestamp, close FROM series ORDER BY symbol, timestamp", conn)
    closes["timestamp"] = pd.to_datetime(closes["timestamp"])
    closes["next_close"] = closes.groupby("symbol")["close"].shift(-1)
    closes["next_ts"] = closes.groupby("symbol")["timestamp"].shift(-1)
    for strategy in (board.model_name, "buy_and_hold"):
        book = board.positions[board.positions["strategy"] == strategy].merge(
            closes, on=["symbol", "timestamp"], how="left").sort_values(["symbol", "timestamp"])
        ret = book["next_close"] / book["close"] - 1.0
        change = book.groupby("symbol")["position"].diff().fillna(book["position"])  # flat before the record
        book["probe_pnl"] = book["position"] * ret - cost * change.abs()
        probe = book.groupby("next_ts")["probe_pnl"].mean()
        mine = board.daily[strategy]
        assert len(mine) == len(probe) > 30
        np.testing.assert_allclose(mine.to_numpy(), probe.reindex(mine.index).to_numpy(), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------- lineage as Dagster sees it
def latest_events(instance, asset: str) -> dict:
    """``partition -> latest materialisation record`` of ``asset``."""
    from dagster import AssetRecordsFilter

    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(asset)), limit=10_000).records
    out = {}
    for record in records:  # newest first
        out.setdefault(record.partition_key, record)
    return out


def test_each_history_partition_has_its_own_version_and_metadata(graph):
    """Distinct content data versions per partition; each event's metadata is that partition's."""
    store = ParquetStore(graph["settings"].store_path)
    for asset in ("validated_bars", "feature_panel", "window_tensors"):
        events = latest_events(graph["instance"], asset)
        versions = {k: r.asset_materialization.tags["dagster/data_version"] for k, r in events.items()}
        assert len(set(versions.values())) == len(versions) > 15, asset  # 3 symbols x 2012..2018
        for key in ("2013|MSFT", "2018|SP500"):
            period, shard = key.split("|")
            frame = store.read(asset, [{"shard": shard, "period": period}])
            meta = events[key].asset_materialization.metadata
            assert meta["rows"].value == len(frame), (asset, key)
            if asset != "window_tensors":
                assert meta["symbols"].value == shard
            ts = pd.to_datetime(frame["timestamp"])
            assert meta["date_range"].value == f"{ts.min():%Y-%m-%d} .. {ts.max():%Y-%m-%d}"


def test_an_unchanged_observation_marks_nothing_stale(graph):
    from plusultra_pipeline.runner import materialized_keys, observe_market_db
    from plusultra_pipeline.staleness import to_do

    g = graph
    assert observe_market_db(g["instance"], g["defs"]) == 0  # nothing changed: nothing recorded
    for asset in ("validated_bars", "feature_panel", "window_tensors"):
        assert to_do(g["instance"], g["defs"], asset, materialized_keys(g["instance"], asset)) == [], asset
    for asset in ("training_set", "pretrained_checkpoint", "supervised_checkpoint", "evaluation_report"):
        assert to_do(g["instance"], g["defs"], asset, g["cutoffs"]) == [], asset
    assert to_do(g["instance"], g["defs"], "inference_frames", g["days"]) == []


def test_each_inference_day_points_at_the_checkpoint_that_served_it(graph):
    checkpoints = latest_events(graph["instance"], "supervised_checkpoint")
    days = latest_events(graph["instance"], "inference_frames")
    assert set(days) == set(graph["days"])
    served = {}
    for day, record in days.items():
        cutoff = "2018-02-01" if day >= "2018-02-01" else "2018-01-01"
        tags = record.asset_materialization.tags
        assert tags["dagster/input_event_pointer/supervised_checkpoint"] == str(checkpoints[cutoff].storage_id)
        assert (tags["dagster/input_data_version/supervised_checkpoint"]
                == checkpoints[cutoff].asset_materialization.tags["dagster/data_version"])
        assert record.asset_materialization.metadata["cutoff"].value == cutoff
        served[cutoff] = served.get(cutoff, 0) + 1
    assert set(served) == {"2018-01-01", "2018-02-01"}
    # the two cutoffs' checkpoints are different models with different versions
    assert len({r.asset_materialization.tags["dagster/data_version"] for r in checkpoints.values()}) == 2


def test_partitions_end_at_the_data_and_skip_holidays(graph):
    from plusultra_pipeline.runner import history_period_keys

    defs = graph["defs"]
    assert history_period_keys(defs)[-1] == "2018"              # the demo data ends 2018-12-31
    assert partition_keys(defs, "supervised_checkpoint")[-1] == "2018-12-01"
    days = partition_keys(defs, "inference_frames")
    assert days[0] == "2018-01-02" and days[-1] == "2018-12-31"
    for holiday in ("2018-01-15", "2018-02-19", "2018-03-30", "2018-12-25"):
        assert holiday not in days
    assert len(days) == 251                                     # NYSE sessions in 2018


def test_partitioned_checks_are_recorded_per_partition(graph):
    from dagster import AssetCheckKey
    from dagster._core.event_api import PartitionKeyFilter

    instance = graph["instance"]
    for asset, check, key in (("validated_bars", "row_count_matches_source", "2013|MSFT"),
                              ("window_tensors", "window_values_finite", "2018|NASDAQ"),
                              ("supervised_checkpoint", "weights_finite", "2018-02-01"),
                              ("supervised_checkpoint", "sidecar_matches_partition", "2018-01-01"),
                              ("evaluation_report", "fold_coverage", "2018-01-01"),
                              ("inference_frames", "positions_in_range", "2018-02-06"),
                              ("inference_frames", "one_row_per_tradable_symbol", "2018-01-03")):
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey(asset), check), limit=5, partition_filter=PartitionKeyFilter(key=key))
        assert history, (asset, check, key)
        record = history[0]
        assert record.status.value == "SUCCEEDED", (asset, check, key)
        assert record.event.dagster_event.event_specific_data.partition == key


def test_runs_the_runner_starts_are_listed_with_the_code_location(graph):
    """Every run carries the code location's repository label (the UI's per-location run lists and
    Overview timeline filter by it) and says it came from the CLI runner."""
    from dagster import RunsFilter

    from plusultra_pipeline.constants import REPOSITORY_LABEL

    runs = graph["instance"].get_runs()
    assert len(runs) >= 8
    labelled = graph["instance"].get_runs(RunsFilter(tags={".dagster/repository": REPOSITORY_LABEL}))
    assert {r.run_id for r in labelled} == {r.run_id for r in runs}
    assert {r.job_name for r in runs} >= {"observe_market_db_job", "history_job", "training_set_job", "training_job",
                                           "evaluation_job", "leaderboard_job", "inference_job"}
    assert all(r.tags.get("plusultra/origin") == "cli" for r in runs)


def test_runs_the_runner_starts_match_the_job_the_code_location_serves(graph):
    """What the UI compares before "Re-execute" (origin-and-snapshot: no warning): each run names the
    ``plusultra`` location's repository, and its job snapshot (the parent's, for an asset subset)
    is the snapshot of the job these definitions serve -- not an ephemeral in-process copy's."""
    runs = graph["instance"].get_runs()
    assert runs
    for run in runs:
        origin = run.remote_job_origin
        assert origin is not None, run.job_name
        assert (origin.location_name, origin.repository_origin.repository_name, origin.job_name) == (
            "plusultra", "__repository__", run.job_name)
        assert run.tags["dagster/code_location"] == "plusultra"
        served = graph["defs"].resolve_job_def(run.job_name).get_job_snapshot_id()
        lineage = graph["instance"].get_job_snapshot(run.job_snapshot_id).lineage_snapshot  # the UI's parent id
        assert (lineage.parent_snapshot_id if lineage else run.job_snapshot_id) == served, run.job_name
        assert run.run_config["execution"] == {"config": {"in_process": {}}}


def test_every_materialised_partition_is_where_the_layout_says(graph):
    """One owner of store paths: `layout.location` finds every materialised partition of every
    stored asset, and the events' paths lie inside it."""
    from plusultra_pipeline.layout import location
    from plusultra_pipeline.runner import materialized_keys

    root = graph["settings"].store_path
    for asset in ("validated_bars", "feature_panel", "window_tensors", "pretrained_checkpoint",
                  "supervised_checkpoint", "evaluation_report", "inference_frames"):
        events = latest_events(graph["instance"], asset)
        for key in materialized_keys(graph["instance"], asset):
            place = location(root, asset, key)
            assert place.is_dir() and any(place.iterdir()), (asset, key)
            meta = events[key].asset_materialization.metadata
            path = meta.get("path") or meta.get("report_path")
            assert path is not None and str(path.value).startswith(str(place)), (asset, key)
    assert any(location(root, "leaderboard", None).glob("*.md"))


def test_reconciliation_prices_every_fill_of_the_demo_log(graph, monkeypatch, capsys):
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_pipeline.cli import main

    settings = graph["settings"]
    stored = ParquetStore(settings.store_path).read("trade_reconciliation")
    assert sorted(stored["day"].unique()) == graph["days"]
    fills = SQLiteMarketDataset(graph["db"]).trades()
    in_scope = fills[fills["decision_timestamp"].isin(graph["days"])]
    assert len(in_scope) > 0 and stored["fills"].sum() == len(in_scope)   # each fill priced once
    frames = ParquetStore(settings.store_path).read("inference_frames", columns=["day", "symbol"])
    # every proposed (day, symbol) has its row; extra rows are symbols leaving the book
    assert set(zip(frames["day"], frames["symbol"])) <= set(zip(stored["day"], stored["symbol"]))
    monkeypatch.setenv("PLUSULTRA_HOME", str(settings.store_path.parent))
    assert main(["reconcile", "--db", str(graph["db"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["fills"] == len(in_scope)
    assert out["summary"]["realised_cost_bps"] == pytest.approx(
        1e4 * stored["execution_cost"].sum() / stored["traded_notional"].sum())
    assert main(["reconcile", "--db", str(graph["db"]), "--from", graph["days"][3], "--to", graph["days"][5]]) == 0
    text = capsys.readouterr().out
    assert "3 decision day(s)" in text and "realised cost" in text and "SP500" in text
    assert main(["reconcile", "--db", str(graph["db"]), "--from", "2030-01-01"]) == 2
    assert "stored days run 2018-01-02..2018-02-06" in capsys.readouterr().err
    from rich.console import Console

    from plusultra_pipeline.cli.run_commands import _print_reconciliation

    console = Console(record=True, width=400)
    _print_reconciliation(console, settings, "configs/demo.yaml")
    printed = console.export_text()
    assert f"{len(in_scope)} fills" in printed and "synthetic" in printed and "realised cost" in printed


def test_a_bad_fill_fails_reconciliation_and_writes_nothing(graph, tmp_path, monkeypatch, capsys):
    import shutil
    import sqlite3

    from plusultra_pipeline.cli import main
    from plusultra_pipeline.runner import run_partitioned

    settings, day = graph["settings"], graph["days"][1]
    bad_db = tmp_path / "bad.sqlite"
    shutil.copy(graph["db"], bad_db)
    with sqlite3.connect(bad_db) as conn:  # sold 5 shares the day before the decision it claims
        conn.execute("INSERT INTO trades VALUES (99999, ?, 'SP500', 'sell', 5, 2700.0, 1.0, 'desk', ?)",
                     [graph["days"][0], day])
    store = ParquetStore(settings.store_path)
    before = store.read_metadata("trade_reconciliation", {"day": day})["write_id"]
    monkeypatch.setenv("PLUSULTRA_HOME", str(settings.store_path.parent))
    assert main(["reconcile", "--db", str(bad_db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trade_id 99999" in err and "on or before the decision" in err
    bad = build_definitions(replace(settings, database=str(bad_db)))
    with pytest.raises(Exception, match="trade_id 99999"):
        run_partitioned(graph["instance"], bad, "reconciliation_job", [day], single_run=True)
    assert store.read_metadata("trade_reconciliation", {"day": day})["write_id"] == before


def test_realised_costs_feed_the_evaluation_when_asked(graph):
    from plusultra_core.errors import PlusUltraError
    from plusultra_pipeline.reconciling import evaluation_cost_bps, realised_cost_bps

    settings = graph["settings"]
    store = ParquetStore(settings.store_path)
    realised = replace(settings, evaluation=replace(settings.evaluation, cost_source="realised"))
    cost, fills = realised_cost_bps(store)
    assert np.isfinite(cost) and fills > 0
    assert evaluation_cost_bps(settings, store) == (settings.evaluation.cost_bps, "configured")
    assert evaluation_cost_bps(realised, store) == (max(cost, 0.0), f"realised over {fills} fills")
    with pytest.raises(PlusUltraError, match="no reconciled fill"):
        evaluation_cost_bps(realised, ParquetStore(settings.store_path.parent / "empty"))
    # the folds then depend on every reconciled day, so new fills make them stale in Dagster
    deps = build_definitions(realised).resolve_asset_graph().get(AssetKey("evaluation_report")).parent_keys
    assert AssetKey("trade_reconciliation") in deps
    assert AssetKey("trade_reconciliation") not in \
        build_definitions(settings).resolve_asset_graph().get(AssetKey("evaluation_report")).parent_keys


def test_a_new_fill_marks_only_its_decision_day_stale(graph, copy_db):
    import sqlite3

    from plusultra_pipeline.runner import observe_trades
    from plusultra_pipeline.staleness import to_do

    g = graph
    assert not to_do(g["instance"], g["defs"], "trade_reconciliation", g["days"])
    db = copy_db(g["db"])
    day, fill_day = g["days"][4], g["days"][5]
    with sqlite3.connect(db) as conn:  # a late-booked fill of that day's decision
        conn.execute("INSERT INTO trades VALUES (88888, ?, 'SP500', 'buy', 1, 2700.0, 0.5, 'desk', ?)",
                     [f"{fill_day} 15:59:00", day])
    defs = build_definitions(replace(g["settings"], database=str(db)))
    observe_trades(g["instance"], defs)
    assert to_do(g["instance"], defs, "trade_reconciliation", g["days"]) == [day]
    observe_trades(g["instance"], build_definitions(g["settings"]))  # back to the fixture's database
    # the fills are back to what the reconciliation was built from: fresh again (content versions)
    assert to_do(g["instance"], g["defs"], "trade_reconciliation", g["days"]) == []
