"""Leakage on the whole graph: perturb every bar after day D, run the graph again, and nothing
dated <= D may change -- features, window tensors, positions, inference frames, report returns."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance

from plusultra_core.data.store import ParquetStore
from plusultra_core.evaluation.book import EXPOSURE_MATCHED
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.layout import FOLD_DATA, fold_dir
from plusultra_pipeline.runner import keys_between, materialize_graph, partition_keys
from tests.pipeline.conftest import tiny_graph_settings

D = pd.Timestamp("2018-01-17")
# one cutoff and one seed: the fold that straddles D is all the test reads (a second cutoff or
# seed would train models nothing here looks at)
CUTOFFS = ("2018-01-01", "2018-01-01")
DAYS = ("2018-01-02", "2018-01-31")


def perturb_after(db, day: pd.Timestamp, seed: int = 5) -> None:
    """Scale every bar after ``day`` by a random walk (OHLC together, so bars stay valid)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT rowid FROM series WHERE timestamp > ? ORDER BY symbol, timestamp",
                            [str(day.date())]).fetchall()
        factor = np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.02, len(rows))))
        with conn:
            conn.executemany("UPDATE series SET open = open * ?, high = high * ?, low = low * ?, "
                             "close = close * ?, volume = volume * 1.5 WHERE rowid = ?",
                             [(f, f, f, f, r[0]) for f, r in zip(factor.tolist(), rows)])
    finally:
        conn.close()


def run_graph(db, tmp):
    settings = tiny_graph_settings(db, tmp, CUTOFFS, DAYS, (0,), history_start="2012")
    defs = build_definitions(settings)
    # an in-memory instance: leakage is a property of the data path, not of the event storage
    # (the SQLite instance's ~15 ms per event would be most of this test's time)
    with DagsterInstance.ephemeral() as instance:
        cutoffs = keys_between(partition_keys(defs, "supervised_checkpoint"), *CUTOFFS)
        days = keys_between(partition_keys(defs, "inference_frames"), *DAYS)
        materialize_graph(instance, defs, settings, lookback_periods(settings), cutoffs, days, say=lambda _: None)
    return settings, days


@pytest.fixture(scope="module")
def twin_graphs(tmp_path_factory):
    from plusultra_core.data.demo_db import build_demo_database

    tmp = tmp_path_factory.mktemp("leakage")
    original, perturbed = tmp / "original.sqlite", tmp / "perturbed.sqlite"
    build_demo_database(original)
    build_demo_database(perturbed)
    perturb_after(perturbed, D)
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    return run_graph(original, tmp / "a"), run_graph(perturbed, tmp / "b")


def _history(settings, asset: str) -> pd.DataFrame:
    store = ParquetStore(settings.store_path)
    frame = store.read(asset, store.list_partitions(asset))
    frame = frame[pd.to_datetime(frame["timestamp"]) <= D]
    return frame.sort_values(["symbol", "timestamp"]).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("asset", ["feature_panel", "window_tensors"])
def test_history_dated_up_to_d_is_unchanged(twin_graphs, asset):
    (a, _), (b, _) = twin_graphs
    left, right = _history(a, asset), _history(b, asset)
    assert len(left) > 4_000  # 3 symbols x 6 years up to D
    pd.testing.assert_frame_equal(left, right)


@pytest.mark.slow
def test_positions_and_returns_dated_up_to_d_are_unchanged(twin_graphs):
    (a, days), (b, _) = twin_graphs
    for cutoff in CUTOFFS[:1]:  # the fold that straddles D
        book_a = pd.read_parquet(fold_dir(a.store_path, cutoff) / FOLD_DATA / "positions.parquet")
        book_b = pd.read_parquet(fold_dir(b.store_path, cutoff) / FOLD_DATA / "positions.parquet")
        # buy_and_hold@exposure holds the fold's *average* exposure by definition (an ex-post
        # benchmark, stated in every report), so it alone may move when later bars change
        keep = lambda f: f[(pd.to_datetime(f["realised_at"]) <= D)  # noqa: E731
                           & (f["strategy"] != EXPOSURE_MATCHED)].sort_values(
            ["strategy", "symbol", "timestamp"]).reset_index(drop=True)
        assert len(keep(book_a)) > 20
        pd.testing.assert_frame_equal(keep(book_a), keep(book_b))
        daily_a = pd.read_parquet(fold_dir(a.store_path, cutoff) / FOLD_DATA / "daily.parquet")
        daily_b = pd.read_parquet(fold_dir(b.store_path, cutoff) / FOLD_DATA / "daily.parquet")
        cols = [c for c in daily_a.columns if c != EXPOSURE_MATCHED]
        pd.testing.assert_frame_equal(daily_a.loc[daily_a.index <= D, cols], daily_b.loc[daily_b.index <= D, cols])
    store_a, store_b = ParquetStore(a.store_path), ParquetStore(b.store_path)
    early = [d for d in days if pd.Timestamp(d) <= D]
    assert len(early) >= 10
    cols = ["timestamp", "symbol", "p_sell", "p_hold", "p_buy", "position", "expected_return",
            "weight", "predicted_volatility", "risk_contribution"]
    frames_a = store_a.read("inference_frames", [{"day": d} for d in early])[cols].reset_index(drop=True)
    frames_b = store_b.read("inference_frames", [{"day": d} for d in early])[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(frames_a, frames_b)
