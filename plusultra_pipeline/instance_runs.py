"""Runs the CLI starts, recorded as the Dagster UI records its own launches.

``JobDefinition.execute_in_process`` records a run of an *ephemeral copy* of the job (in-memory IO
manager, in-process executor) with no code-location origin, so the UI cannot match it to the job it
loads: "Re-execute" warns that the job "may be a different version", and the run is not tied to
the ``plusultra`` location. `execute_job_run` creates the run from the job itself (its snapshot is
the one the code location serves when it loads the same settings) with the workspace's origin
(location ``plusultra`` of workspace.yaml, repository ``__repository__``), then executes it in this
process with the default executor's ``in_process`` mode -- what a launched run does with
``execution: {config: {in_process: {}}}``.

An executor other than the default (``$PLUSULTRA_EXECUTOR`` = k8s / celery) hands steps to other
processes, which need a reconstructable job; those runs keep ``execute_in_process`` (steps in this
process, as before) and carry no origin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, Sequence

from dagster import AssetKey, DagsterInstance, JobDefinition

from plusultra_pipeline.constants import CODE_LOCATION

DEFINITIONS_MODULE = "plusultra_pipeline.definitions"  # workspace.yaml's python_module
REPOSITORY_NAME = "__repository__"  # Dagster's name of the repository a `Definitions` object makes
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def code_location_origin():
    """The origin of workspace.yaml's ``plusultra`` location (a module loaded in this interpreter)."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  working_directory=str(Path(__file__).resolve().parents[1]))
    return ManagedGrpcPythonEnvCodeLocationOrigin(target, location_name=CODE_LOCATION)


def job_origin(job_name: str):
    """`RemoteJobOrigin` of ``job_name`` in the ``plusultra`` code location."""
    from dagster._core.remote_origin import RemoteRepositoryOrigin

    return RemoteRepositoryOrigin(code_location_origin(), REPOSITORY_NAME).get_job_origin(job_name)


def _default_executor(job: JobDefinition) -> bool:
    from dagster import multi_or_in_process_executor

    return job.executor_def is multi_or_in_process_executor or job.executor_def.name == multi_or_in_process_executor.name


def execute_job_run(instance: DagsterInstance, job: JobDefinition, *, tags: Mapping[str, str],
                    run_config: Mapping, asset_selection: Sequence[AssetKey] | None = None,
                    partition_key: str | None = None):
    """Create a run of ``job`` (or its ``asset_selection``) in ``instance`` with the code location's
    origin and the job's own snapshot, execute it here, and return its result (``run_id``,
    ``all_events``, ``success``); raise the step's error if it fails."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run
    from dagster._core.execution.execute_in_process import merge_run_tags

    selection = list(asset_selection) if asset_selection else None
    if not _default_executor(job):
        return job.execute_in_process(instance=instance, tags=tags, run_config=run_config,
                                      asset_selection=selection, partition_key=partition_key)
    config = {**run_config, **IN_PROCESS}
    run_tags = merge_run_tags(job, partition_key, tags, selection, instance, config)
    run = instance.create_run_for_job(job, run_config=config, tags=run_tags,
                                      asset_selection=frozenset(selection) if selection else None,
                                      remote_job_origin=job_origin(job.name))
    return execute_run(InMemoryJob(job), run, instance, raise_on_error=True)
