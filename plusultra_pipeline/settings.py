"""Pipeline settings from ``configs/pipeline.yaml`` (or ``$PLUSULTRA_CONFIG``), typed and checked.

Deployment differences come from the environment, not code edits:
``PLUSULTRA_CONFIG`` picks the settings file, ``PLUSULTRA_DB`` overrides the database path and
``PLUSULTRA_HOME`` the root under which the store (``<home>/store``) lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from plusultra_core.config import load_config
from plusultra_core.data.periods import PERIODS, period_bounds
from plusultra_core.data.sharding import ShardingConfig
from plusultra_core.errors import ConfigError, PartitionKeyError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "pipeline.yaml"


@dataclass(frozen=True)
class HistoryConfig:
    period: str = "year"   # year | quarter | month: the time dimension of history partitions
    start: str | int = "1986"  # first period key (format of the period: 2003, 2003-04, ...); YAML's 2003 is fine

    def __post_init__(self):
        if self.period not in PERIODS:
            raise ConfigError(f"history.period '{self.period}' is not one of {', '.join(PERIODS)}")
        object.__setattr__(self, "start", str(self.start))
        try:
            period_bounds(self.start, self.period)
        except PartitionKeyError as exc:
            raise ConfigError(f"history.start: {exc}") from None


@dataclass(frozen=True)
class FeatureSelection:
    names: tuple[str, ...] | None = None  # None: every registered feature
    tags: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()         # names removed from the selection
    strict: bool = False                  # raise instead of skipping features with missing inputs
    max_nan_ratio: float = 0.25           # asset check: warn above this NaN/inf share per feature

    def __post_init__(self):
        for key in ("names", "tags"):
            if getattr(self, key) is not None and not getattr(self, key):
                raise ConfigError(f"features.{key} is an empty list: name at least one, or remove the key "
                                  f"to select every registered feature")
        if not (isinstance(self.max_nan_ratio, (int, float)) and 0 <= self.max_nan_ratio <= 1):
            raise ConfigError(f"features.max_nan_ratio must be a share in [0, 1], got {self.max_nan_ratio!r}")


def _check_day(value, key: str) -> None:
    """A ``YYYY-MM-DD`` calendar day, or a `ConfigError` naming ``key`` (before any run starts)."""
    try:
        ok = isinstance(value, str) and pd.Timestamp(value).strftime("%Y-%m-%d") == value
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ConfigError(f"{key} must be a day written YYYY-MM-DD, got {value!r}")


CADENCES = {"monthly": "0 0 1 * *", "quarterly": "0 0 1 */3 *", "semiannual": "0 0 1 */6 *",
            "weekly": "0 0 * * 1"}


@dataclass(frozen=True)
class TrainingSettings:
    cadence: str = "monthly"            # retraining cadence = cutoff partitions: monthly | quarterly | semiannual | weekly
    first_cutoff: str = "2018-01-01"    # first cutoff partition (YYYY-MM-DD)
    purge_bars: int = 10                # bars before each cutoff that no model of that cutoff sees
    validation_months: int = 12         # early stopping on the last months before the cutoff (purged)
    window: str = "expanding"           # expanding | rolling (fit on the last rolling_years only)
    rolling_years: int | None = None
    recency_halflife_years: float | None = None  # sample recent training blocks more often
    seeds: tuple[int, ...] = (0,)       # one model per seed per cutoff; reports show mean ± std and the ensemble
    pretrain: bool = True               # false: no pretrained_checkpoint asset; supervised models start cold
    pretrain_config: str = "configs/pretrain.yaml"
    train_config: str = "configs/train.yaml"
    architecture: str | None = None     # override model.architecture of both configs
    max_epochs: int | None = None       # override trainer.max_epochs of both configs
    warm_start_from_previous: bool = False  # incremental retraining: start from the previous cutoff
    progress_bar: bool = True           # Lightning's progress bar (the demo shows its own progress)
    rl_config: str | None = None        # e.g. configs/rl.yaml: add rl_checkpoint (PPO on the simulator) per cutoff

    @property
    def rl_enabled(self) -> bool:
        """True when ``rl_config`` names a config: the graph then has `rl_checkpoint` and scores it."""
        return self.rl_config is not None

    def __post_init__(self):
        if self.cadence not in CADENCES:
            raise ConfigError(f"training.cadence '{self.cadence}' is not one of {', '.join(CADENCES)}")
        _check_day(self.first_cutoff, "training.first_cutoff")
        self.cutoff_window  # validates purge_bars, validation_months, window, rolling_years, halflife
        seeds = self.seeds
        if (not isinstance(seeds, (list, tuple)) or not seeds
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)):
            raise ConfigError(f"training.seeds must be a non-empty list of integers >= 0, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"training.seeds lists a seed twice: {list(seeds)}")
        object.__setattr__(self, "seeds", tuple(int(x) for x in seeds))
        if self.rl_config is not None and not (isinstance(self.rl_config, str) and self.rl_config):
            raise ConfigError(f"training.rl_config must be a config path (configs/rl.yaml) or null, got {self.rl_config!r}")

    @property
    def cutoff_window(self):
        """The fit / validation rule of every cutoff (`plusultra_core.walkforward.CutoffWindow`)."""
        from plusultra_core.walkforward import CutoffWindow

        return CutoffWindow(purge_bars=self.purge_bars, validation_months=self.validation_months,
                            window=self.window, rolling_years=self.rolling_years,
                            recency_halflife_years=self.recency_halflife_years)


COST_SOURCES = ("configured", "realised")


@dataclass(frozen=True)
class EvaluationSettings:
    cost_bps: float = 5.0               # transaction cost on |position change|, model and baselines alike
    baselines: tuple[str, ...] = ("buy_and_hold", "momentum", "linear")
    cost_grid: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)  # the leaderboard's cost sensitivity (bps)
    benchmark: str | None = None        # `benchmarks` table series for alpha/beta (None: the first one)
    declared_trials: int = 0            # configurations tried outside this store, added to the DSR's trial count
    significance: float = 0.05          # level of the verdicts' tests (two-sided)
    cost_source: str = "configured"     # configured: cost_bps | realised: the reconciled fills' cost per traded notional

    def __post_init__(self):
        if not (isinstance(self.cost_bps, (int, float)) and self.cost_bps >= 0):
            raise ConfigError(f"evaluation.cost_bps must be a number >= 0, got {self.cost_bps!r}")
        grid = self.cost_grid
        if not isinstance(grid, (list, tuple)) or not all(isinstance(c, (int, float)) and c >= 0 for c in grid):
            raise ConfigError(f"evaluation.cost_grid must be a list of numbers >= 0, got {grid!r}")
        object.__setattr__(self, "cost_grid", tuple(float(c) for c in grid))
        if isinstance(self.declared_trials, bool) or not isinstance(self.declared_trials, int) or self.declared_trials < 0:
            raise ConfigError(f"evaluation.declared_trials must be an integer >= 0, got {self.declared_trials!r}")
        if not (isinstance(self.significance, float) and 0 < self.significance < 0.5):
            raise ConfigError(f"evaluation.significance must be a number in (0, 0.5), got {self.significance!r}")
        if self.cost_source not in COST_SOURCES:
            raise ConfigError(f"evaluation.cost_source must be one of {', '.join(COST_SOURCES)}, got {self.cost_source!r}")


@dataclass(frozen=True)
class InferenceSettings:
    first_day: str = "2018-01-02"       # first trading-day partition (YYYY-MM-DD)
    export_predictions: bool = False    # also write rows to the SQLite `predictions` table
    schedule_hour_utc: int = 22         # daily inference after the close (weekdays)

    def __post_init__(self):
        _check_day(self.first_day, "inference.first_day")
        if not 0 <= self.schedule_hour_utc <= 23:
            raise ConfigError(f"inference.schedule_hour_utc must be an hour 0..23, got {self.schedule_hour_utc!r}")


@dataclass(frozen=True)
class ReconciliationSettings:
    capital: float = 1_000_000.0        # account currency behind the book: turns proposed positions into shares
    strategy: str | None = None         # reconcile only fills with this `trades.strategy` tag (None: every fill)

    def __post_init__(self):
        if isinstance(self.capital, bool) or not (isinstance(self.capital, (int, float)) and self.capital > 0):
            raise ConfigError(f"reconciliation.capital must be a number > 0, got {self.capital!r}")
        object.__setattr__(self, "capital", float(self.capital))


@dataclass(frozen=True)
class DemoSettings:
    cutoffs: tuple[str, ...] = ("2018-01-01", "2018-04-01")  # first and last cutoff the demo trains
    inference_days: tuple[str, ...] = ("2018-01-02", "2018-04-30")  # first and last inference day (or none)

    def __post_init__(self):
        if len(self.cutoffs) != 2:
            raise ConfigError(f"demo.cutoffs must be [first, last], got {list(self.cutoffs)}")
        if len(self.inference_days) not in (0, 2):
            raise ConfigError(f"demo.inference_days must be [first, last] or [], got {list(self.inference_days)}")
        for name, days in (("cutoffs", self.cutoffs), ("inference_days", self.inference_days)):
            for day in days:
                _check_day(day, f"demo.{name}")
            if days and days[0] > days[1]:
                raise ConfigError(f"demo.{name}: first {days[0]} is after last {days[1]}")


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
    reconciliation: ReconciliationSettings = field(default_factory=ReconciliationSettings)
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
