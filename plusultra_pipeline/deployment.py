"""The Dagster instance of a deployment: ``deploy/dagster.yaml`` and the environment it reads.

Beyond one machine, the instance (run, event-log and schedule storage in Postgres, the run
queue) is chosen by copying ``deploy/dagster.yaml`` into ``$DAGSTER_HOME`` and setting the
``DAGSTER_PG_*`` variables, never by editing code. Dagster resolves ``{env: NAME}`` values only
when a storage is built and then fails deep inside its config machinery; `check_instance_env`
names every unset variable in one line first, so `plusultra` commands say what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from plusultra_core.errors import ConfigError
from plusultra_pipeline.settings import PROJECT_ROOT

DEPLOY_DIR = PROJECT_ROOT / "deploy"
INSTANCE_YAML = DEPLOY_DIR / "dagster.yaml"
INSTANCE_FILE = "dagster.yaml"  # the name Dagster reads inside $DAGSTER_HOME


def env_names(config: Any) -> list[str]:
    """Every ``NAME`` of an ``{env: NAME}`` value in a Dagster config tree, in file order."""
    if isinstance(config, Mapping):
        if set(config) == {"env"} and isinstance(config["env"], str):
            return [config["env"]]
        return [name for value in config.values() for name in env_names(value)]
    if isinstance(config, list):
        return [name for value in config for name in env_names(value)]
    return []


def check_instance_env(path: str | Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """The environment variables instance file ``path`` reads; raise `ConfigError` naming each one
    that is unset or empty."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the Dagster instance file: {exc}") from exc
    names = list(dict.fromkeys(env_names(config)))
    missing = [n for n in names if not environ.get(n)]
    if missing:
        raise ConfigError(f"{path}: environment variable(s) {', '.join(missing)} not set; "
                          f"this Dagster instance reads {', '.join(names)}")
    return names


def instance_at(home: str | Path):
    """The `DagsterInstance` of ``home/dagster.yaml`` (its env checked first, see `check_instance_env`)."""
    from dagster import DagsterInstance

    home = Path(home).resolve()
    if (home / INSTANCE_FILE).is_file():
        check_instance_env(home / INSTANCE_FILE)
    return DagsterInstance.from_config(str(home))
