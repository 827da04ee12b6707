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


CADENCES = {"monthly": "0 0 1 * *", "quarterly": "0 0 1 */3 *", "weekly": "0 0 * * 1"}


@dataclass(frozen=True)
class TrainingSettings:
    cadence: str = "monthly"            # retraining cadence = cutoff partitions: monthly | quarterly | weekly
    first_cutoff: str = "2018-01-01"    # first cutoff partition (YYYY-MM-DD)
    purge_bars: int = 10                # bars before each cutoff that no model of that cutoff sees
    pretrain_config: str = "configs/pretrain.yaml"
    train_config: str = "configs/train.yaml"
    architecture: str | None = None     # override model.architecture of both configs
    max_epochs: int | None = None       # override trainer.max_epochs of both configs
    warm_start_from_previous: bool = False  # incremental retraining: start from the previous cutoff
    progress_bar: bool = True           # Lightning's progress bar (the demo shows its own progress)

    def __post_init__(self):
        if self.cadence not in CADENCES:
            raise ConfigError(f"training.cadence '{self.cadence}' is not one of {', '.join(CADENCES)}")
        if self.purge_bars < 0:
            raise ConfigError(f"training.purge_bars must be >= 0, got {self.purge_bars}")


@dataclass(frozen=True)
class EvaluationSettings:
    cost_bps: float = 5.0               # transaction cost on |position change|, model and baselines alike
    baselines: tuple[str, ...] = ("buy_and_hold", "momentum", "linear")


@dataclass(frozen=True)
class InferenceSettings:
    first_day: str = "2018-01-02"       # first trading-day partition (YYYY-MM-DD)
    export_predictions: bool = False    # also write rows to the SQLite `predictions` table
    schedule_hour_utc: int = 22         # daily inference after the close (weekdays)


@dataclass(frozen=True)
class DemoSettings:
    cutoffs: tuple[str, ...] = ("2018-01-01", "2018-04-01")  # first and last cutoff the demo trains
    inference_days: tuple[str, ...] = ("2018-01-02", "2018-04-30")  # first and last inference day


@dataclass(frozen=True)
class PipelineSettings:
    database: str = ".plusultra/demo.sqlite"
    store_root: str = ".plusultra/store"
    history: HistoryConfig = field(default_factory=HistoryConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    features: FeatureSelection = field(default_factory=FeatureSelection)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)

    @property
    def database_path(self) -> Path:
        return Path(self.database).expanduser().resolve()

    @property
    def store_path(self) -> Path:
        return Path(self.store_root).expanduser().resolve()

    def project_path(self, relative: str) -> Path:
        """A config file named relative to the project root (or absolute)."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path


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
