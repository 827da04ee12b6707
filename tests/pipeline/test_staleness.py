"""`staleness.BatchedStaleStatusResolver` answers what Dagster's own resolver answers, partition by
partition, in every state the runner asks about: nothing built, all fresh, a changed source
partition, and rebuilt bars whose feature partitions are now stale (the "version before the input
pointer" path), also after a rebuild that left the content as it was."""

from __future__ import annotations

import sqlite3

from dagster import AssetKey, DagsterInstance
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver
from dagster._time import get_current_datetime

from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.constants import FEATURE_PANEL, PERIOD_DIM, VALIDATED_BARS, WINDOW_TENSORS
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.incremental import RunPlan
from plusultra_pipeline.runner import materialize_history, observe_market_db, register_symbol_partitions, run_history_plans
from plusultra_pipeline.staleness import resolver, statuses
from tests.pipeline.conftest import settings_for

HISTORY = (VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS)


def _dagster_statuses(instance, defs, asset: str, keys) -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    plain = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    return {k: plain.get_status(AssetKey(asset), k).value for k in keys}


def _assert_agree(instance, defs) -> dict[str, dict[str, str]]:
    out = {}
    for asset in HISTORY:
        keys = defs.resolve_asset_graph().get(AssetKey(asset)).partitions_def.get_partition_keys(
            dynamic_partitions_store=instance)
        out[asset] = statuses(instance, defs, asset, keys)
        assert out[asset] == _dagster_statuses(instance, defs, asset, keys), asset
    return out


def test_batched_statuses_equal_dagsters(tmp_path, small_synth_db_path, copy_db):
    db = copy_db(small_synth_db_path)
    settings = settings_for(db, tmp_path / "store")
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        register_symbol_partitions(instance, defs)
        assert set(_assert_agree(instance, defs)[FEATURE_PANEL].values()) == {"MISSING"}
        materialize_history(instance, defs, settings, lookback_periods(settings))
        built = _assert_agree(instance, defs)[FEATURE_PANEL]  # periods from 1986: the data starts in 2000
        assert {v for k, v in built.items() if k >= "2000"} == {"FRESH"} and "MISSING" in built.values()
        with sqlite3.connect(db) as conn:  # one symbol-year changes in the source
            conn.execute("UPDATE series SET close = close * 1.01, high = high * 1.01 "
                         "WHERE symbol = 'S0003' AND timestamp >= '2001-03-01' AND timestamp < '2001-04-01'")
        observe_market_db(instance, defs)
        got = _assert_agree(instance, defs)
        assert {k for k, v in got[VALIDATED_BARS].items() if v == "STALE"} == {"2001|S0003"}
        run_history_plans(instance, defs, [RunPlan((VALIDATED_BARS,), ("2001", "2001"), ("S0003", "S0003"))])
        got = _assert_agree(instance, defs)
        # the rebuilt bars are read by every shard's features of 2001 and later (ranks, lookback)
        stale = {k for k, v in got[FEATURE_PANEL].items() if v == "STALE"}
        assert stale and all(k.split("|")[0] >= "2001" for k in stale)
        assert {v for k, v in got[VALIDATED_BARS].items() if k >= "2000"} == {"FRESH"}
        # bars rebuilt with unchanged content (same data version): nothing new turns stale
        run_history_plans(instance, defs, [RunPlan((VALIDATED_BARS,), ("2000", "2000"), ("S0001", "S0001"))])
        again = _assert_agree(instance, defs)
        assert {k for k, v in again[FEATURE_PANEL].items() if v == "STALE"} == stale
        # the batched resolver asked the event log about the changed input only, not per partition
        res = resolver(instance, defs)
        res.prefetch(AssetKey(FEATURE_PANEL), sorted(stale))
        for key in sorted(stale):
            res.get_status(AssetKey(FEATURE_PANEL), key)
        assert {m[2] for m in res.records._before} == {"2001|S0003", "2000|S0001"}
        # every shard's features read every shard's bars: their inputs are mapped once per period
        assert {g[1] for g in res._deps_by_group} == {((PERIOD_DIM, k.split("|")[0]),) for k in stale}
