"""Cross-sectional features do not depend on the sharding or on which partitions run together.

On the small synthetic database (6 symbols, 2000-01 .. 2002-04, three yearly periods) the history
assets are materialised under three layouts — one partition per symbol with every feature run
over a single shard, 4 hash buckets through the planner, and one shard holding everything — and
their feature panels must agree. Then a correction of one symbol's bars is applied
incrementally and must equal a rebuild from scratch: the planner rebuilds every shard's feature
partitions of the affected periods, since the correction moves the other symbols' ranks too.

The tests are about the values in the store, so each layout uses an in-memory Dagster instance
(a run costs ~0.6 s instead of ~2.5 s on the SQLite test instance).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pandas as pd
from dagster import DagsterInstance

from plusultra_core.data.sharding import ShardingConfig
from plusultra_core.data.store import ParquetStore
from plusultra_core.features import DEFAULT_REGISTRY
from plusultra_core.history import PartitionRef
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.constants import FEATURE_PANEL, VALIDATED_BARS, WINDOW_TENSORS
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.incremental import RunPlan
from plusultra_pipeline.runner import materialize_history, plan_history, run_history_plans
from tests.pipeline.conftest import settings_for

XS = [n for n in DEFAULT_REGISTRY.names if DEFAULT_REGISTRY.get(n).cross_sectional]


def _settings(db, root, sharding: ShardingConfig):
    return replace(settings_for(db, root), sharding=sharding)


def _one_shard_per_run(plans: list[RunPlan], shards: list[str]) -> list[RunPlan]:
    """The planned bars runs, then every feature partition in a run of its own shard (what a UI
    launch of one shard at a time does)."""
    bars, features = [], []
    for plan in plans:
        if VALIDATED_BARS in plan.assets:
            bars.append(replace(plan, assets=(VALIDATED_BARS,)))
        lo, hi = shards.index(plan.shard_range[0]), shards.index(plan.shard_range[1])
        features.extend(replace(plan, assets=(FEATURE_PANEL, WINDOW_TENSORS), shard_range=(s, s))
                        for s in shards[lo:hi + 1])
    return bars + features


def _build(db, root, sharding: ShardingConfig, *, split: bool = False) -> pd.DataFrame:
    settings = _settings(db, root, sharding)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        if split:
            _, plans = plan_history(instance, defs, settings, lookback_periods(settings))
            shards = sorted(set(defs.resources["market_db"].shard_map().values()))
            split_plans = _one_shard_per_run(plans, shards)
            assert sum(FEATURE_PANEL in p.assets for p in split_plans) == len(shards) > 1
            run_history_plans(instance, defs, split_plans)
        else:
            materialize_history(instance, defs, settings, lookback_periods(settings))
    return _features(settings)


def _features(settings) -> pd.DataFrame:
    frame = ParquetStore(settings.store_path).read(FEATURE_PANEL)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame.drop(columns=["shard", "period"]).set_index(["timestamp", "symbol"]).sort_index()


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    """Equal up to float64 round-off: rolling sums are blocked from the first row read, and runs
    over different period ranges start their reads at different rows (measured: <= 5e-12)."""
    assert a.index.equals(b.index) and list(a.columns) == list(b.columns), what
    np.testing.assert_array_equal(a[XS].to_numpy(), b[XS].to_numpy(), err_msg=what)  # ranks: exact
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=what)


def test_values_are_the_same_under_every_layout(tmp_path, small_synth_db_path):
    per_symbol = _build(small_synth_db_path, tmp_path / "symbol", ShardingConfig("symbol"), split=True)
    hashed = _build(small_synth_db_path, tmp_path / "hash", ShardingConfig("hash", 4))
    single = _build(small_synth_db_path, tmp_path / "one", ShardingConfig("hash", 1))
    # the ranks really compare the six symbols, also where each feature run held one symbol only
    ranks = per_symbol["xs_rank_mom_20"].dropna()
    assert ranks.nunique() == 6 and ranks.min() == 0.0 and ranks.max() == 1.0
    _assert_same(per_symbol, single, "symbol shards, one per run vs one shard")
    _assert_same(hashed, single, "4 hash buckets vs one shard")


def test_incremental_update_equals_rebuild(tmp_path, small_synth_db_path, copy_db):
    db = copy_db(small_synth_db_path)
    settings = _settings(db, tmp_path / "store", ShardingConfig("symbol"))
    defs = build_definitions(settings)
    lookback = lookback_periods(settings)
    with DagsterInstance.ephemeral() as instance:
        materialize_history(instance, defs, settings, lookback)
        store = ParquetStore(settings.store_path)
        before = _features(settings)
        # a correction of one symbol's June 2000 bars (a 20% level shift, OHLC consistent)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE series SET open = open * 1.2, high = high * 1.2, low = low * 1.2, "
                         "close = close * 1.2 WHERE symbol = 'S0003' AND timestamp >= '2000-06-01' "
                         "AND timestamp < '2000-07-01'")
        stale, plans = plan_history(instance, defs, settings, lookback)
        assert stale == [PartitionRef("S0003", "2000")]
        # bars of the one stale partition first; then every shard's features of 2000 .. 2002
        # (the lookback reaches two years ahead), which rank against S0003
        assert plans[0] == RunPlan((VALIDATED_BARS,), ("2000", "2000"), ("S0003", "S0003"))
        assert plans[1:] == [RunPlan((FEATURE_PANEL, WINDOW_TENSORS), ("2000", "2002"), ("S0000", "S0005"))]
        run_history_plans(instance, defs, plans)
        assert plan_history(instance, defs, settings, lookback)[1] == []
    incremental = _features(settings)
    rebuilt = _build(db, tmp_path / "rebuild", ShardingConfig("symbol"))
    _assert_same(incremental, rebuilt, "incremental vs rebuild")
    # the correction did move other symbols' ranks (what a refresh of S0003 alone would miss)
    others = incremental.index.get_level_values("symbol") != "S0003"
    moved = (incremental.loc[others, XS] != before.loc[others, XS]) & incremental.loc[others, XS].notna()
    assert moved.to_numpy().any()
    # window tensors follow their feature partitions
    windows = store.read(WINDOW_TENSORS)
    assert set(windows["symbol"]) == {f"S000{i}" for i in range(6)}


def test_planner_rebuilds_every_shard_after_all_stale_bars():
    """Two stale shards of one period: both shards' bars are refreshed before any feature run, and
    the features of all shards in the period and its lookback periods are rebuilt (the case where
    one run per stale box would rank A's symbols against C's stale bars)."""
    from plusultra_pipeline.incremental import plan_runs

    shards, periods = ["A", "B", "C", "D"], [str(y) for y in range(2000, 2006)]
    materialized = {PartitionRef(s, p) for s in shards for p in periods}
    stale = [PartitionRef("A", "2002"), PartitionRef("C", "2002")]
    features = (FEATURE_PANEL, WINDOW_TENSORS)
    assert plan_runs(stale, shards, periods, 1, materialized, cross_sectional=True) == [
        RunPlan((VALIDATED_BARS,), ("2002", "2002"), ("A", "A")),
        RunPlan((VALIDATED_BARS,), ("2002", "2002"), ("C", "C")),
        RunPlan(features, ("2002", "2003"), ("A", "D")),
    ]
    # B's 2003 features were never built: not created by the refresh
    sparse = materialized - {PartitionRef("B", "2003")}
    plans = plan_runs(stale, shards, periods, 1, sparse, cross_sectional=True)
    built = {PartitionRef(s, p) for plan in plans if plan.assets == features
             for s in shards[shards.index(plan.shard_range[0]):shards.index(plan.shard_range[1]) + 1]
             for p in periods[periods.index(plan.period_range[0]):periods.index(plan.period_range[1]) + 1]}
    assert built == {PartitionRef(s, p) for s in shards for p in ("2002", "2003")} - {PartitionRef("B", "2003")}
    # a new day of every shard: its bars and features in one run, then the lookback period
    new_day = [PartitionRef(s, "2003") for s in shards]
    assert plan_runs(new_day, shards, periods, 1, materialized, cross_sectional=True) == [
        RunPlan((VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS), ("2003", "2003"), ("A", "D")),
        RunPlan(features, ("2004", "2004"), ("A", "D")),
    ]
    # without cross-sectional features a shard's refresh stays within the shard
    history = (VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS)
    assert plan_runs(stale, shards, periods, 1, materialized) == [
        RunPlan(history, ("2002", "2002"), ("A", "A")), RunPlan(history, ("2002", "2002"), ("C", "C")),
        RunPlan(features, ("2003", "2003"), ("A", "A")), RunPlan(features, ("2003", "2003"), ("C", "C")),
    ]
