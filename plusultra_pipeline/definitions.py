"""The `Definitions` of plusultra (loaded by `dagster dev`, workspace.yaml and [tool.dagster]).

Partition ranges end at the database's last bar (`calendar.DataCalendar`), read when the
definitions load: after new bars arrive, reload the code location (the CLI loads fresh
definitions on every command).
"""

from dagster import Definitions

from plusultra_pipeline.assets.evaluation import build_evaluation_assets
from plusultra_pipeline.assets.history_stage import history_multi_asset
from plusultra_pipeline.assets.features import build_feature_assets, lookback_periods
from plusultra_pipeline.assets.inference import build_inference_assets
from plusultra_pipeline.assets.reconciliation import build_reconciliation_assets
from plusultra_pipeline.assets.ingest import build_ingest_assets
from plusultra_pipeline.assets.training import build_training_assets
from plusultra_pipeline.assets.training_set import build_training_set_asset
from plusultra_pipeline.calendar import DataCalendar
from plusultra_pipeline.code_versions import history_code_version
from plusultra_pipeline.console_log import console_logger
from plusultra_pipeline.executors import executor_from_env
from plusultra_pipeline.jobs import build_jobs
from plusultra_pipeline.partitions import cutoff_partitions, history_partitions, trading_day_partitions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.schedules import build_schedules
from plusultra_pipeline.sensors import build_sensors
from plusultra_pipeline.settings import PipelineSettings, load_settings


def build_definitions(settings: PipelineSettings | None = None, calendar: DataCalendar | None = None) -> Definitions:
    """Assemble assets, checks, jobs, schedules, sensors and resources for ``settings``, with
    partitions bounded by ``calendar`` (default: read from the settings' database)."""
    settings = settings or load_settings()
    calendar = calendar or DataCalendar.read(settings.database_path)
    history = history_partitions(settings.history, calendar)
    cutoffs = cutoff_partitions(settings.training, calendar)
    days = trading_day_partitions(settings.inference, calendar)
    jobs = build_jobs(rl=settings.training.rl_enabled, pretrain=settings.training.pretrain)
    lookback = lookback_periods(settings)
    code_version = history_code_version(settings, lookback)
    market_db, validated_bars = build_ingest_assets(settings, history, code_version)
    return Definitions(
        assets=[market_db, history_multi_asset([validated_bars, *build_feature_assets(settings, history, code_version)],
                                    settings.history.period),
                build_training_set_asset(settings, cutoffs),
                *build_training_assets(settings, cutoffs),
                *build_evaluation_assets(settings, cutoffs),
                build_inference_assets(settings, days, cutoffs),
                *build_reconciliation_assets(settings, days)],
        jobs=list(jobs.values()),
        loggers={"console": console_logger},  # one line per event on the terminal
        executor=executor_from_env(),
        schedules=build_schedules(settings, jobs, cutoffs, days),
        sensors=build_sensors(settings, jobs, lookback, days, history.get_partitions_def_for_dimension("period")),
        resources={
            "market_db": MarketDatabase(path=str(settings.database_path),
                                        shard_mode=settings.sharding.mode,
                                        shard_buckets=settings.sharding.buckets),
            "store": PartitionStore(root=str(settings.store_path)),
        },
    )


defs = build_definitions()
