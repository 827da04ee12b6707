"""Run the graph in-process against the project's Dagster instance (CLI and tests use this).

`materialize_history` registers the symbol partitions, finds what is stale with respect to the
SQLite file, and executes the history job as a handful of single runs (one per box of periods ×
shards). Re-running with nothing changed runs nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance

from plusultra_pipeline.constants import SYMBOLS_PARTITIONS
from plusultra_pipeline.incremental import RunPlan
from plusultra_pipeline.instance_runs import execute_job_run
from plusultra_pipeline.settings import PipelineSettings


@dataclass
class HistoryRunReport:
    plans: list[RunPlan] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    stale: list = field(default_factory=list)


def project_instance(home: str | Path | None = None) -> DagsterInstance:
    """The persistent instance in ``$DAGSTER_HOME`` (default ``<PLUSULTRA_HOME>/dagster_home``):
    SQLite storage unless its ``dagster.yaml`` says otherwise (e.g. ``deploy/dagster.yaml``)."""
    home = home or os.environ.get("DAGSTER_HOME") or Path(os.environ.get("PLUSULTRA_HOME", ".plusultra")) / "dagster_home"
    from plusultra_core.atomic import write_file
    from plusultra_pipeline.deployment import check_instance_env
    from plusultra_pipeline.run_lock import instance_init_lock

    home = Path(home).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    # two first runs on one fresh home would both create Dagster's SQLite schema: one at a time,
    # and touch each storage while holding the lock so its tables and migrations exist after
    with instance_init_lock(home):
        config = home / "dagster.yaml"
        if not config.exists():  # default SQLite storage; telemetry off (these machines have no network)
            write_file(config, "telemetry:\n  enabled: false\n")
        check_instance_env(config)  # e.g. deploy/dagster.yaml copied here: every DAGSTER_PG_* var set
        instance = DagsterInstance.get()
        instance.get_runs(limit=1)
        instance.get_asset_keys()
        instance.all_instigator_state()
    return instance


def register_symbol_partitions(instance: DagsterInstance, defs) -> list[str]:
    """Add missing shard keys from `assets` (what `symbols_sensor` does on a schedule)."""
    market_db = defs.resources["market_db"]
    wanted = sorted(set(market_db.shard_map().values()))
    existing = set(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
    new = [k for k in wanted if k not in existing]
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS, new)
    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))


def observe_market_db(instance: DagsterInstance, defs) -> int:
    """Observe `market_db` (an ordinary run of `observe_market_db_job`); return how many partitions
    had a new or changed fingerprint."""
    from dagster import DagsterEventType

    result = execute_job_run(instance, defs.resolve_job_def("observe_market_db_job"), run_config=log_config(),
                             tags=cli_tags())
    return sum(1 for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION)


def observe_trades(instance: DagsterInstance, defs) -> None:
    """Observe `executed_trades` (an ordinary run of `observe_trades_job`)."""
    execute_job_run(instance, defs.resolve_job_def("observe_trades_job"), run_config=log_config(), tags=cli_tags())


def history_roots(instance: DagsterInstance, defs, settings: PipelineSettings) -> tuple[list, set, set]:
    """Partitions Dagster calls missing or stale: `validated_bars` among the partitions the
    database has rows for, and the later history assets among the partitions already built."""
    from plusultra_core.history import PartitionRef
    from plusultra_pipeline.assets.ingest import observed_versions
    from plusultra_pipeline.constants import FEATURE_PANEL, VALIDATED_BARS, WINDOW_TENSORS
    from plusultra_pipeline.partitions import split_key
    from plusultra_pipeline.staleness import resolver, to_do

    res = resolver(instance, defs)  # one state of the instance: its batched reads are shared
    period_keys = set(history_period_keys(defs))
    with_data = [k for k in observed_versions(instance) if split_key(k)[1] in period_keys]
    def refs(keys):
        return {PartitionRef(*split_key(k)) for k in keys}

    bars = refs(to_do(instance, defs, VALIDATED_BARS, with_data, res))
    built = [k for k in materialized_keys(instance, VALIDATED_BARS) if split_key(k)[1] in period_keys]
    features = refs(to_do(instance, defs, FEATURE_PANEL, built, res))
    tensors = refs(to_do(instance, defs, WINDOW_TENSORS, built, res))
    return sorted(bars, key=lambda r: (r.period, r.shard)), features, tensors


def plan_history(instance: DagsterInstance, defs, settings: PipelineSettings, lookback_periods: int) -> tuple[list, list[RunPlan]]:
    """Observe the database, then the stale partitions and the runs that would rebuild them
    (nothing is built; an observation only records changed fingerprints)."""
    from plusultra_pipeline.assets.features import feature_pipeline
    from plusultra_pipeline.incremental import materialized_refs, plan_runs

    shard_order = register_symbol_partitions(instance, defs)
    observe_market_db(instance, defs)
    stale, features, tensors = history_roots(instance, defs, settings)
    store = defs.resources["store"].store()
    plans = plan_runs(stale, shard_order, history_period_keys(defs), lookback_periods,
                      materialized=materialized_refs(store),
                      cross_sectional=bool(feature_pipeline(settings).cross_sectional),
                      feature_roots=features, tensor_roots=tensors)
    return sorted(set(stale) | features | tensors, key=lambda r: (r.period, r.shard)), plans


def materialized_keys(instance: DagsterInstance, asset: str) -> list[str]:
    """Partition keys of ``asset`` with at least one materialisation in the instance."""
    from dagster import AssetKey

    return sorted(instance.get_materialized_partitions(AssetKey(asset)))


def history_period_keys(defs) -> list[str]:
    from dagster import AssetKey

    from plusultra_pipeline.constants import PERIOD_DIM, VALIDATED_BARS

    multi = defs.resolve_asset_graph().get(AssetKey(VALIDATED_BARS)).partitions_def
    return multi.get_partitions_def_for_dimension(PERIOD_DIM).get_partition_keys()


def partition_keys(defs, asset: str) -> list[str]:
    """Every partition key of a time-partitioned asset (cutoffs, trading days) in these definitions."""
    from dagster import AssetKey

    return defs.resolve_asset_graph().get(AssetKey(asset)).partitions_def.get_partition_keys()


def cli_tags() -> dict[str, str]:
    """Tags naming where a run came from (shown in the UI's run list), and the code location's
    repository label Dagster filters runs by (its own launches set it from the run's origin)."""
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from plusultra_pipeline.constants import REPOSITORY_LABEL

    return {"plusultra/origin": "cli", "plusultra/command": " ".join(os.path.basename(a) for a in sys.argv[:2]),
            REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}


def materialize_history(instance: DagsterInstance, defs, settings: PipelineSettings,
                        lookback_periods: int, on_plan=None, processes: int = 1) -> HistoryRunReport:
    """Execute the missing or stale part of the history graph as single runs; raise if a run fails.

    ``processes`` > 1: each run's shards are cut into that many slices run at the same time, each
    run's step in its own process (Dagster's multiprocess executor, `plusultra_pipeline.parallel`);
    the stored partitions and their data versions are the in-process run's.
    """
    stale, plans = plan_history(instance, defs, settings, lookback_periods)
    report = HistoryRunReport(plans=plans, stale=stale)
    if processes > 1:
        from plusultra_pipeline.assets.features import feature_pipeline
        from plusultra_pipeline.parallel import run_history_plans_in_processes

        report.run_ids = run_history_plans_in_processes(
            instance, settings, plans, list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS)), processes,
            cross_sectional=bool(feature_pipeline(settings).cross_sectional), run_config=log_config(),
            tags=cli_tags(), on_plan=on_plan)
    else:
        report.run_ids = run_history_plans(instance, defs, plans, on_plan)
    return report


def run_history_plans(instance: DagsterInstance, defs, plans: list[RunPlan], on_plan=None) -> list[str]:
    """Execute each plan as one single run of `history_job` over its box, in order; raise on failure."""
    job = defs.resolve_job_def("history_job")
    run_ids = []
    for plan in plans:
        if on_plan:
            on_plan(plan)
        selection = [AssetKey(a) for a in plan.assets]
        result = execute_job_run(instance, job, tags={**plan.range_tags, **cli_tags()}, run_config=log_config(),
                                 asset_selection=selection)
        run_ids.append(result.run_id)
    return run_ids


# --------------------------------------------------------------------------- the model half
def refresh_training_sets(instance: DagsterInstance, defs) -> str | None:
    """Materialise every cutoff's `training_set` manifest in one run (sidecars only, no rows)."""
    from plusultra_pipeline.constants import TRAINING_SET

    keys = partition_keys(defs, TRAINING_SET)
    return run_partitioned(instance, defs, "training_set_job", keys, single_run=True)[0] if keys else None


def cutoffs_to_train(instance: DagsterInstance, defs, cutoffs: list[str]) -> dict[str, list[str]]:
    """``cutoff -> assets`` to rebuild: both checkpoints when Dagster calls the pretrained one
    missing or stale (the supervised one warm-starts from it), else the supervised one alone (and
    always alone in a graph without pretraining); when the graph has `rl_checkpoint`, it follows
    whatever was rebuilt (it fine-tunes the supervised one), or is rebuilt alone when only it is
    missing or stale."""
    from plusultra_pipeline.constants import PRETRAINED_CHECKPOINT, RL_CHECKPOINT, SUPERVISED_CHECKPOINT
    from plusultra_pipeline.staleness import to_do

    graph = defs.resolve_asset_graph()
    pre = set(to_do(instance, defs, PRETRAINED_CHECKPOINT, cutoffs)) if graph.has(AssetKey(PRETRAINED_CHECKPOINT)) else set()
    sup = set(to_do(instance, defs, SUPERVISED_CHECKPOINT, cutoffs))
    has_rl = graph.has(AssetKey(RL_CHECKPOINT))
    rl = set(to_do(instance, defs, RL_CHECKPOINT, cutoffs)) if has_rl else set()
    plan = {}
    for c in cutoffs:
        assets = ([PRETRAINED_CHECKPOINT, SUPERVISED_CHECKPOINT] if c in pre else
                  [SUPERVISED_CHECKPOINT] if c in sup else [])
        if has_rl and (assets or c in rl):
            assets.append(RL_CHECKPOINT)
        if assets:
            plan[c] = assets
    return plan


def run_partitioned(instance: DagsterInstance, defs, job_name: str, keys: list[str], *, single_run: bool,
                    assets: list[str] | None = None):
    """Execute ``job_name`` (or only its ``assets``) for ``keys``: one run over the range, or one
    run per key."""
    job = defs.resolve_job_def(job_name)
    selection = [AssetKey(a) for a in assets] if assets else None
    run_ids = []
    if not keys:
        return run_ids
    if single_run:
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        run_ids.append(execute_job_run(instance, job, tags={**tags, **cli_tags()}, run_config=log_config(),
                                       asset_selection=selection).run_id)
    else:
        for key in keys:
            run_ids.append(execute_job_run(instance, job, partition_key=key, tags=cli_tags(),
                                           run_config=log_config(), asset_selection=selection).run_id)
    return run_ids


def run_unpartitioned(instance: DagsterInstance, defs, job_name: str) -> str:
    return execute_job_run(instance, defs.resolve_job_def(job_name), run_config=log_config(), tags=cli_tags()).run_id


def log_config() -> dict:
    """Console log level of in-process runs (``$PLUSULTRA_RUN_LOG_LEVEL``, default INFO); every
    event is stored in the instance either way, so the UI shows the full logs."""
    level = os.environ.get("PLUSULTRA_RUN_LOG_LEVEL", "INFO").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def keys_between(keys: list[str], first: str, last: str) -> list[str]:
    """The date-like ``keys`` within ``[first, last]``."""
    lo, hi = pd.Timestamp(first), pd.Timestamp(last)
    return [k for k in keys if lo <= pd.Timestamp(k) <= hi]


@dataclass
class GraphRunReport:
    history: HistoryRunReport
    trained: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    leaderboard_run: str | None = None
    inferred: list[str] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)


def materialize_graph(instance: DagsterInstance, defs, settings: PipelineSettings, lookback_periods: int,
                      cutoffs: list[str], days: list[str], say=print) -> GraphRunReport:
    """Everything Dagster calls missing or stale, in dependency order, as a handful of runs.

    History: single runs per box of partitions. Training sets: one run over every cutoff (cheap).
    Checkpoints and fold reports: one run per cutoff (each is a model). Leaderboard: one run when
    any fold changed. Inference, then the reconciliation of fills: one run each over the days to do
    (before the folds when they book the realised cost). Each stage asks Dagster after the stage
    before it ran, since Dagster judges staleness by direct inputs.
    """
    from plusultra_pipeline.constants import EVALUATION_REPORT, INFERENCE_FRAMES, LEADERBOARD, TRADE_RECONCILIATION
    from plusultra_pipeline.staleness import to_do

    history = materialize_history(instance, defs, settings, lookback_periods,
                                  on_plan=lambda p: say(f"history: {','.join(p.assets)} "
                                                        f"{p.period_range[0]}..{p.period_range[1]} × "
                                                        f"{p.shard_range[0]}..{p.shard_range[1]}"))
    report = GraphRunReport(history=history)
    refresh_training_sets(instance, defs)
    for cutoff, assets in cutoffs_to_train(instance, defs, cutoffs).items():
        say(f"training: cutoff {cutoff} ({' -> '.join(a.split('_')[0] for a in assets)})")
        run_partitioned(instance, defs, "training_job", [cutoff], single_run=False, assets=assets)
        report.trained.append(cutoff)

    def serve_and_reconcile():
        stale = to_do(instance, defs, INFERENCE_FRAMES, days)
        if stale:
            say(f"inference: {len(stale)} trading days {stale[0]}..{stale[-1]} in one run")
            run_partitioned(instance, defs, "inference_job", stale, single_run=True)
            report.inferred = stale
        observe_trades(instance, defs)  # a new or corrected fill marks exactly its decision day stale
        stale = to_do(instance, defs, TRADE_RECONCILIATION, days)
        if stale:
            say(f"reconciliation: executed fills vs proposed positions, {len(stale)} decision days in one run")
            run_partitioned(instance, defs, "reconciliation_job", stale, single_run=True)
            report.reconciled = stale

    realised_costs = settings.evaluation.cost_source == "realised"
    if realised_costs:  # the folds book the reconciled fills' cost: reconcile first
        serve_and_reconcile()
    for cutoff in to_do(instance, defs, EVALUATION_REPORT, cutoffs):
        say(f"evaluation: fold {cutoff} out-of-sample vs baselines")
        run_partitioned(instance, defs, "evaluation_job", [cutoff], single_run=False)
        report.evaluated.append(cutoff)
    if report.evaluated or to_do(instance, defs, LEADERBOARD):
        say("leaderboard: joining the folds' out-of-sample records")
        report.leaderboard_run = run_unpartitioned(instance, defs, "leaderboard_job")
    if not realised_costs:
        serve_and_reconcile()
    return report
