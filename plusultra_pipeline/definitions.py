"""The `Definitions` of plusultra (loaded by `dagster dev`, workspace.yaml and [tool.dagster])."""

from dagster import Definitions

from plusultra_pipeline.assets.evaluation import build_evaluation_assets
from plusultra_pipeline.assets.features import build_feature_assets, lookback_periods
from plusultra_pipeline.assets.inference import build_inference_assets
from plusultra_pipeline.assets.ingest import build_ingest_assets
from plusultra_pipeline.assets.training import build_training_assets
from plusultra_pipeline.jobs import build_jobs
from plusultra_pipeline.partitions import cutoff_partitions, history_partitions, trading_day_partitions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.schedules import build_schedules
from plusultra_pipeline.sensors import build_sensors
from plusultra_pipeline.settings import PipelineSettings, load_settings


def build_definitions(settings: PipelineSettings | None = None) -> Definitions:
    """Assemble assets, checks, jobs, schedules, sensors and resources for ``settings``."""
    settings = settings or load_settings()
    history = history_partitions(settings.history)
    cutoffs = cutoff_partitions(settings.training)
    days = trading_day_partitions(settings.inference)
    jobs = build_jobs()
    lookback = lookback_periods(settings)
    return Definitions(
        assets=[*build_ingest_assets(settings, history, lookback),
                *build_feature_assets(settings, history),
                *build_training_assets(settings, cutoffs),
                *build_evaluation_assets(settings, cutoffs),
                build_inference_assets(settings, days)],
        jobs=list(jobs.values()),
        schedules=build_schedules(settings, jobs, cutoffs, days),
        sensors=build_sensors(settings, jobs, lookback, days),
        resources={
            "market_db": MarketDatabase(path=str(settings.database_path),
                                        shard_mode=settings.sharding.mode,
                                        shard_buckets=settings.sharding.buckets),
            "store": PartitionStore(root=str(settings.store_path)),
        },
    )


defs = build_definitions()
