"""History partitions in parallel across processes, with Dagster's multiprocess executor.

A history run is one step (the ``history`` multi-asset) over a box of shards × periods, so the
multiprocess executor alone parallelises nothing inside it. `run_history_plans_in_processes` cuts
every planned box into shard slices (`incremental.parallel_waves`) and executes the slices of a
wave as concurrent runs. Each run is orchestrated by a worker process of its own and executed with
the multiprocess executor, so its step runs in a further process that rebuilds the job from the
settings (`reconstruct_history_job`, the reconstructor Dagster calls across the process boundary):
the shape of a run the daemon launches. Worker processes, not threads: Dagster reconfigures
`logging` whenever a run starts, and two runs starting in one process at once deadlock on its lock.
The instance must be one processes share: a ``$DAGSTER_HOME`` on disk (SQLite) or Postgres
(deploy/dagster.yaml).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from dagster import AssetKey, DagsterInstance, build_reconstructable_job, execute_job

from plusultra_core.config import load_config, to_dict
from plusultra_pipeline.executors import multiprocess_run_config
from plusultra_pipeline.incremental import RunPlan, parallel_waves
from plusultra_pipeline.settings import PipelineSettings

HISTORY_JOB = "history_job"


def reconstruct_history_job(settings: dict):
    """The history job of ``settings`` (a `to_dict` of `PipelineSettings`), in a step process."""
    from plusultra_pipeline.definitions import build_definitions

    return build_definitions(load_config(PipelineSettings, settings)).resolve_job_def(HISTORY_JOB)


def history_job_pointer(settings: dict):
    """A `ReconstructableJob` of the history job of ``settings``: what crosses the process boundary."""
    return build_reconstructable_job(__name__, reconstruct_history_job.__name__,
                                     reconstructable_kwargs={"settings": settings})


def _execute(instance_ref, settings: dict, plan: RunPlan, run_config: dict, tags: dict) -> str:
    """One run of ``plan`` (in a worker process); its run id, or raise when it failed."""
    instance = DagsterInstance.from_ref(instance_ref)
    try:
        with execute_job(history_job_pointer(settings), instance, run_config=run_config,
                         tags={**plan.range_tags, **tags}, asset_selection=[AssetKey(a) for a in plan.assets],
                         raise_on_error=True) as result:
            if not result.success:
                raise RuntimeError(f"history run {result.run_id} over {plan} failed")
            return result.run_id
    finally:
        instance.dispose()


def run_history_plans_in_processes(instance: DagsterInstance, settings: PipelineSettings, plans: list[RunPlan],
                                   shard_order: list[str], processes: int, *, cross_sectional: bool,
                                   run_config: dict | None = None, tags: dict | None = None,
                                   on_plan=None) -> list[str]:
    """Execute ``plans`` as waves of up to ``processes`` concurrent runs; raise if a run fails."""
    config = {**(run_config or {}), **multiprocess_run_config(1)}
    ref, raw = instance.get_ref(), to_dict(settings)
    run_ids: list[str] = []
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        for wave in parallel_waves(plans, shard_order, processes, cross_sectional):
            for plan in wave:
                if on_plan:
                    on_plan(plan)
            futures = [pool.submit(_execute, ref, raw, plan, config, tags or {}) for plan in wave]
            run_ids.extend(f.result() for f in futures)  # a wave ends before the next one starts
    return run_ids
