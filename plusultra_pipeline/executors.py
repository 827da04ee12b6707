"""The executor every job runs its steps with, chosen by the environment (``$PLUSULTRA_EXECUTOR``).

- ``default`` (unset): Dagster's ``multi_or_in_process_executor``. A run chooses by run config:
  ``execution: {config: {multiprocess: {max_concurrent: 4}}}`` (each step in its own process,
  the default for launched runs) or ``execution: {config: {in_process: {}}}``. The CLI's runs are
  in-process (`plusultra_pipeline.instance_runs`); `plusultra_pipeline.parallel` runs history partitions in
  parallel with the multiprocess one.
- ``k8s``: ``dagster_k8s.k8s_job_executor``, each step a Kubernetes Job (deploy/helm/values.yaml).
- ``celery``: ``dagster_celery.celery_executor``, steps queued to Celery workers (deploy/celery.yaml).

``$PLUSULTRA_TRAINING_GPUS`` = n puts `training_op_tags` on the training steps: a step pod of the
k8s executor requests n GPUs and a Celery task goes to the ``gpu`` queue (other executors ignore
the tags). The training configs must then ask for the GPU too (configs/train_gpu.yaml).

The integration packages are optional extras (``pip install 'plusultra[k8s]'`` / ``[celery]``),
pinned to the releases matching the dagster core; asking for one that is not installed is a
one-line `ConfigError`.
"""

from __future__ import annotations

import importlib
import os
from typing import Mapping

from plusultra_core.errors import ConfigError

EXECUTOR_ENV = "PLUSULTRA_EXECUTOR"
TRAINING_GPUS_ENV = "PLUSULTRA_TRAINING_GPUS"
# name -> (module, attribute, pip extra)
EXECUTORS = {
    "default": ("dagster", "multi_or_in_process_executor", None),
    "k8s": ("dagster_k8s", "k8s_job_executor", "k8s"),
    "celery": ("dagster_celery", "celery_executor", "celery"),
}


def executor_from_env(environ: Mapping[str, str] | None = None):
    """The `ExecutorDefinition` named by ``$PLUSULTRA_EXECUTOR`` (default: ``default``)."""
    environ = os.environ if environ is None else environ
    name = environ.get(EXECUTOR_ENV) or "default"
    if name not in EXECUTORS:
        raise ConfigError(f"{EXECUTOR_ENV}={name!r} is not an executor; choose one of {', '.join(EXECUTORS)}")
    module, attribute, extra = EXECUTORS[name]
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError:
        raise ConfigError(f"{EXECUTOR_ENV}={name} needs the {module.replace('_', '-')} package: "
                          f"pip install 'plusultra[{extra}]'") from None


def multiprocess_run_config(max_concurrent: int | None = None) -> dict:
    """Run config of Dagster's multiprocess executor (``max_concurrent`` steps at once, default: CPUs)."""
    config = {} if max_concurrent is None else {"max_concurrent": int(max_concurrent)}
    return {"execution": {"config": {"multiprocess": config}}}


def training_op_tags(environ: Mapping[str, str] | None = None) -> dict:
    """Op tags of the training steps for ``$PLUSULTRA_TRAINING_GPUS`` GPUs each (none when unset or 0)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(TRAINING_GPUS_ENV) or "0"
    if not raw.isdigit():
        raise ConfigError(f"{TRAINING_GPUS_ENV}={raw!r} must be a whole number of GPUs per training step")
    gpus = int(raw)
    if not gpus:
        return {}
    return {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": gpus}}}},
            "dagster-celery/queue": "gpu"}
