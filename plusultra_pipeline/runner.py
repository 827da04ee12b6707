"""Run the graph in-process against the project's Dagster instance (CLI and tests use this).

`materialize_history` registers the symbol partitions, finds what is stale with respect to the
SQLite file, and executes the history job as a handful of single runs (one per box of periods ×
shards). Re-running with nothing changed runs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance

from plusultra_pipeline.constants import SYMBOLS_PARTITIONS
from plusultra_pipeline.incremental import RunPlan, materialized_refs, plan_runs, stale_partitions
from plusultra_pipeline.partitions import period_partitions
from plusultra_pipeline.settings import PipelineSettings


@dataclass
class HistoryRunReport:
    plans: list[RunPlan] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    stale: list = field(default_factory=list)


def project_instance(home: str | Path | None = None) -> DagsterInstance:
    """The persistent instance in ``$DAGSTER_HOME`` (default ``<PLUSULTRA_HOME>/dagster_home``)."""
    home = home or os.environ.get("DAGSTER_HOME") or Path(os.environ.get("PLUSULTRA_HOME", ".plusultra")) / "dagster_home"
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def register_symbol_partitions(instance: DagsterInstance, defs) -> list[str]:
    """Add missing shard keys from `assets` (what `symbols_sensor` does on a schedule)."""
    market_db = defs.resources["market_db"]
    wanted = sorted(set(market_db.shard_map().values()))
    existing = set(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
    new = [k for k in wanted if k not in existing]
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS, new)
    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))


def plan_history(instance: DagsterInstance, defs, settings: PipelineSettings, lookback_periods: int) -> tuple[list, list[RunPlan]]:
    """Stale partitions and the runs that would rebuild them (nothing is executed)."""
    market_db = defs.resources["market_db"]
    store = defs.resources["store"].store()
    dataset = market_db.dataset()
    shard_of = market_db.shard_map(dataset)
    shard_order = register_symbol_partitions(instance, defs)
    period_order = period_partitions(settings.history).get_partition_keys()
    known = set(period_order)
    stale = [r for r in stale_partitions(dataset, shard_of, store, settings.history.period) if r.period in known]
    plans = plan_runs(stale, shard_order, period_order, lookback_periods, materialized=materialized_refs(store))
    return stale, plans


def materialize_history(instance: DagsterInstance, defs, settings: PipelineSettings,
                        lookback_periods: int, on_plan=None) -> HistoryRunReport:
    """Execute the stale part of the history graph as single runs; raise if a run fails."""
    stale, plans = plan_history(instance, defs, settings, lookback_periods)
    report = HistoryRunReport(plans=plans, stale=stale)
    job = defs.resolve_job_def("history_job")
    for plan in plans:
        if on_plan:
            on_plan(plan)
        selection = [_key(a) for a in plan.assets]
        result = job.execute_in_process(instance=instance, tags=plan.range_tags,
                                        asset_selection=selection, raise_on_error=True)
        report.run_ids.append(result.run_id)
    return report


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)
