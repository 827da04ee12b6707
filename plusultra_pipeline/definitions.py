"""The `Definitions` of plusultra (loaded by `dagster dev`, workspace.yaml and [tool.dagster])."""

from __future__ import annotations

from dagster import Definitions

from plusultra_pipeline.assets.features import build_feature_assets, lookback_periods
from plusultra_pipeline.assets.ingest import build_ingest_assets
from plusultra_pipeline.jobs import build_history_job
from plusultra_pipeline.partitions import history_partitions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.sensors import build_sensors
from plusultra_pipeline.settings import PipelineSettings, load_settings


def build_definitions(settings: PipelineSettings | None = None) -> Definitions:
    """Assemble assets, checks, jobs, sensors and resources for ``settings``."""
    settings = settings or load_settings()
    history = history_partitions(settings.history)
    market_db, validated_bars = build_ingest_assets(settings, history)
    feature_panel, window_tensors = build_feature_assets(settings, history)
    history_job = build_history_job()
    return Definitions(
        assets=[market_db, validated_bars, feature_panel, window_tensors],
        jobs=[history_job],
        sensors=build_sensors(settings, history_job, lookback_periods(settings)),
        resources={
            "market_db": MarketDatabase(path=str(settings.database_path),
                                        shard_mode=settings.sharding.mode,
                                        shard_buckets=settings.sharding.buckets),
            "store": PartitionStore(root=str(settings.store_path)),
        },
    )


defs = build_definitions()
