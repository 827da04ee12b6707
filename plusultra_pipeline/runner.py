"""Run the graph in-process against the project's Dagster instance (CLI and tests use this).

`materialize_history` registers the symbol partitions, finds what is stale with respect to the
SQLite file, and executes the history job as a handful of single runs (one per box of periods ×
shards). Re-running with nothing changed runs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance

from plusultra_pipeline.constants import SYMBOLS_PARTITIONS
from plusultra_pipeline.incremental import RunPlan, plan_stale_history
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
    config = home / "dagster.yaml"
    if not config.exists():  # default SQLite storage; telemetry off (these machines have no network)
        config.write_text("telemetry:\n  enabled: false\n")
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
    return plan_stale_history(dataset, shard_of, store, settings, lookback_periods, shard_order, period_order)


def materialize_history(instance: DagsterInstance, defs, settings: PipelineSettings,
                        lookback_periods: int, on_plan=None) -> HistoryRunReport:
    """Execute the stale part of the history graph as single runs; raise if a run fails."""
    stale, plans = plan_history(instance, defs, settings, lookback_periods)
    report = HistoryRunReport(plans=plans, stale=stale)
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
        result = job.execute_in_process(instance=instance, tags=plan.range_tags, run_config=log_config(),
                                        asset_selection=selection, raise_on_error=True)
        run_ids.append(result.run_id)
    return run_ids


# --------------------------------------------------------------------------- the model half
def _sidecar_or_none(path):
    from plusultra_core.errors import CheckpointError
    from plusultra_core.training.checkpoints import read_sidecar

    try:
        return read_sidecar(path) if Path(path).is_file() else None
    except CheckpointError:
        return None


def stale_cutoffs(settings: PipelineSettings, cutoffs: list[str]) -> list[str]:
    """Cutoffs where any seed's checkpoint is missing or was trained on other data or config."""
    from plusultra_core.config import config_hash
    from plusultra_core.data.store import ParquetStore
    from plusultra_pipeline.assets.training import pretrain_config_for, train_config_for
    from plusultra_pipeline.layout import checkpoint_path
    from plusultra_pipeline.training_data import history_version, partitions_before

    store = ParquetStore(settings.store_path)
    out = []
    for cutoff in cutoffs:
        version = history_version(store, partitions_before(store, cutoff, settings.history.period))
        current = True
        for seed in settings.training.seeds:
            for kind, cfg in (("pretrained", pretrain_config_for(settings, cutoff, seed)),
                              ("supervised", train_config_for(settings, cutoff, seed))):
                side = _sidecar_or_none(checkpoint_path(settings.store_path, kind, cutoff, seed))
                if not side or side.get("data_version") != version or side.get("config_hash") != config_hash(cfg):
                    current = False
        if not current:
            out.append(cutoff)
    return out


def _created(settings: PipelineSettings, cutoff: str) -> list:
    """``created_at`` of every seed's supervised checkpoint of ``cutoff`` (None where missing)."""
    from plusultra_pipeline.layout import checkpoint_paths

    paths = checkpoint_paths(settings.store_path, "supervised", cutoff, settings.training.seeds)
    return [(_sidecar_or_none(p) or {}).get("created_at") for p in paths]


def stale_folds(settings: PipelineSettings, cutoffs: list[str]) -> list[str]:
    """Cutoffs whose evaluation report is missing or older than any of their checkpoints."""
    import json

    from plusultra_pipeline.layout import LINEAGE_FILE, fold_dir

    out = []
    for cutoff in cutoffs:
        created = _created(settings, cutoff)
        marker = fold_dir(settings.store_path, cutoff) / LINEAGE_FILE
        seen = json.loads(marker.read_text()) if marker.is_file() else {}
        if None in created or seen.get("checkpoints_created_at") != created:
            out.append(cutoff)
    return out


def stale_days(settings: PipelineSettings, days: list[str]) -> list[str]:
    """Inference days without a frame, or whose frame came from other checkpoint versions."""
    from plusultra_core.data.store import ParquetStore
    from plusultra_pipeline.assets.inference import checkpoint_for_days
    from plusultra_pipeline.constants import INFERENCE_FRAMES

    store = ParquetStore(settings.store_path)
    out = []
    for cutoff, group in checkpoint_for_days(settings, [pd.Timestamp(d) for d in days]).items():
        created = _created(settings, str(cutoff.date()))
        for day in group:
            meta = (store.read_metadata(INFERENCE_FRAMES, {"day": str(day.date())}) or {}).get("metadata", {})
            if meta.get("checkpoints_created_at") != created:
                out.append(str(day.date()))
    return sorted(out)


def run_partitioned(instance: DagsterInstance, defs, job_name: str, keys: list[str], *, single_run: bool):
    """Execute ``job_name`` for ``keys``: one run over the range, or one run per key."""
    job = defs.resolve_job_def(job_name)
    run_ids = []
    if not keys:
        return run_ids
    if single_run:
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        run_ids.append(job.execute_in_process(instance=instance, tags=tags, run_config=log_config()).run_id)
    else:
        for key in keys:
            run_ids.append(job.execute_in_process(instance=instance, partition_key=key,
                                                  run_config=log_config()).run_id)
    return run_ids


def run_unpartitioned(instance: DagsterInstance, defs, job_name: str) -> str:
    return defs.resolve_job_def(job_name).execute_in_process(instance=instance, run_config=log_config()).run_id


def log_config() -> dict:
    """Console log level of in-process runs (``$PLUSULTRA_RUN_LOG_LEVEL``, default INFO); every
    event is stored in the instance either way, so the UI shows the full logs."""
    level = os.environ.get("PLUSULTRA_RUN_LOG_LEVEL", "INFO").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def keys_between(partitions_def, first: str, last: str) -> list[str]:
    """Partition keys of ``partitions_def`` within ``[first, last]`` (as dates)."""
    lo, hi = pd.Timestamp(first), pd.Timestamp(last)
    return [k for k in partitions_def.get_partition_keys() if lo <= pd.Timestamp(k) <= hi]


@dataclass
class GraphRunReport:
    history: HistoryRunReport
    trained: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    leaderboard_run: str | None = None
    inferred: list[str] = field(default_factory=list)


def materialize_graph(instance: DagsterInstance, defs, settings: PipelineSettings, lookback_periods: int,
                      cutoffs: list[str], days: list[str], say=print) -> GraphRunReport:
    """Everything stale, in dependency order, as a handful of runs.

    History: single runs per box of partitions. Checkpoints and fold reports: one run per cutoff
    (each is a model). Leaderboard: one run when any fold changed. Inference: one run over the
    stale days. Nothing current is recomputed.
    """
    history = materialize_history(instance, defs, settings, lookback_periods,
                                  on_plan=lambda p: say(f"history: {','.join(p.assets)} "
                                                        f"{p.period_range[0]}..{p.period_range[1]} × "
                                                        f"{p.shard_range[0]}..{p.shard_range[1]}"))
    report = GraphRunReport(history=history)
    for cutoff in stale_cutoffs(settings, cutoffs):
        say(f"training: cutoff {cutoff} (pretrain -> supervised)")
        run_partitioned(instance, defs, "training_job", [cutoff], single_run=False)
        report.trained.append(cutoff)
    for cutoff in stale_folds(settings, cutoffs):
        say(f"evaluation: fold {cutoff} out-of-sample vs baselines")
        run_partitioned(instance, defs, "evaluation_job", [cutoff], single_run=False)
        report.evaluated.append(cutoff)
    if report.evaluated or not leaderboard_exists(settings):
        say("leaderboard: joining the folds' out-of-sample records")
        report.leaderboard_run = run_unpartitioned(instance, defs, "leaderboard_job")
    stale = stale_days(settings, days)
    if stale:
        say(f"inference: {len(stale)} trading days {stale[0]}..{stale[-1]} in one run")
        run_partitioned(instance, defs, "inference_job", stale, single_run=True)
        report.inferred = stale
    return report


def leaderboard_exists(settings: PipelineSettings) -> bool:
    from plusultra_pipeline.layout import leaderboard_dir

    return any(leaderboard_dir(settings.store_path).glob("*.md"))
