"""Pipeline settings from ``configs/pipeline.yaml`` (or ``$PLUSULTRA_CONFIG``), typed and checked.

Deployment differences come from the environment, not code edits:
``PLUSULTRA_CONFIG`` picks the settings file, ``PLUSULTRA_DB`` overrides the database path and
``PLUSULTRA_HOME`` the root under which the store (``<home>/store``) lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from plusultra_core.config import load_config
from plusultra_core.data.periods import PERIODS
from plusultra_core.data.sharding import ShardingConfig
from plusultra_core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "pipeline.yaml"


@dataclass(frozen=True)
class HistoryConfig:
    period: str = "year"   # year | quarter | month: the time dimension of history partitions
    start: str = "1986"    # first period key (format of the period: 2003, 2003-04, ...)

    def __post_init__(self):
        if self.period not in PERIODS:
            raise ConfigError(f"history.period '{self.period}' is not one of {', '.join(PERIODS)}")


@dataclass(frozen=True)
class FeatureSelection:
    names: tuple[str, ...] | None = None  # None: every registered feature
    tags: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()         # names removed from the selection
    strict: bool = False                  # raise instead of skipping features with missing inputs
    max_nan_ratio: float = 0.25           # asset check: warn above this NaN/inf share per feature


@dataclass(frozen=True)
class PipelineSettings:
    database: str = ".plusultra/demo.sqlite"
    store_root: str = ".plusultra/store"
    history: HistoryConfig = field(default_factory=HistoryConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    features: FeatureSelection = field(default_factory=FeatureSelection)

    @property
    def database_path(self) -> Path:
        return Path(self.database).expanduser().resolve()

    @property
    def store_path(self) -> Path:
        return Path(self.store_root).expanduser().resolve()


def load_settings(path: str | Path | None = None, *, environ: dict | None = None) -> PipelineSettings:
    """Settings from ``path`` / ``$PLUSULTRA_CONFIG`` / the default file, then env overrides."""
    env = os.environ if environ is None else environ
    path = Path(path or env.get("PLUSULTRA_CONFIG") or DEFAULT_CONFIG)
    settings = load_config(PipelineSettings, path)
    if env.get("PLUSULTRA_DB"):
        settings = replace(settings, database=env["PLUSULTRA_DB"])
    if env.get("PLUSULTRA_HOME"):
        settings = replace(settings, store_root=str(Path(env["PLUSULTRA_HOME"]) / "store"))
    return settings
