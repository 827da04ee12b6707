"""Sensors: keep the `symbols` partitions in step with `assets`; react to new candles.

Both default to stopped, as Dagster users expect: turn them on in the UI (or `dagster sensor start`).
"""

import hashlib

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from plusultra_core.history import PartitionRef
from plusultra_pipeline.assets.ingest import changed_versions, source_versions
from plusultra_pipeline.calendar import DataCalendar
from plusultra_pipeline.constants import MARKET_DB, SYMBOLS_PARTITIONS
from plusultra_pipeline.incremental import materialized_refs, plan_runs
from plusultra_pipeline.partitions import split_key, symbols_partitions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def build_sensors(settings: PipelineSettings, jobs: dict, lookback_periods: int, days_def, periods_def):
    @sensor(name="symbols_sensor", minimum_interval_seconds=300,
            default_status=DefaultSensorStatus.STOPPED,
            description="Adds a `symbols` partition for every shard of tradable symbols in `assets`.")
    def symbols_sensor(context: SensorEvaluationContext, market_db: MarketDatabase):
        wanted = sorted(set(market_db.shard_map().values()))
        existing = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
        new = [k for k in wanted if k not in existing]
        if not new:
            return SkipReason(f"all {len(wanted)} symbol partitions already exist")
        return SensorResult(dynamic_partitions_requests=[symbols_partitions.build_add_request(new)])

    @sensor(name="market_db_sensor", jobs=[jobs["history_job"], jobs["inference_job"]], minimum_interval_seconds=300,
            default_status=DefaultSensorStatus.STOPPED,
            description="Observes the SQLite file (records every changed shard × period fingerprint) and "
                        "requests single runs over exactly the affected history partitions, plus inference "
                        "for trading days newer than the last one it saw (its cursor).")
    def market_db_sensor(context: SensorEvaluationContext, market_db: MarketDatabase, store: PartitionStore):
        from plusultra_pipeline.assets.features import feature_pipeline

        shard_order = list(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
        missing = sorted(set(market_db.shard_map().values()) - set(shard_order))
        if missing:
            return SkipReason(f"symbol partitions not registered yet: {missing[:5]} (run symbols_sensor)")
        period_order = periods_def.get_partition_keys()
        changed = {k: v for k, v in changed_versions(context.instance, source_versions(market_db, settings.history.period)).items()
                   if split_key(k)[1] in set(period_order)}
        requests = []
        if changed:
            stale = sorted((PartitionRef(*split_key(k)) for k in changed), key=lambda r: (r.period, r.shard))
            plans = plan_runs(stale, shard_order, period_order, lookback_periods, materialized=materialized_refs(store.store()),
                              cross_sectional=bool(feature_pipeline(settings).cross_sectional))
            # the same change requested twice is deduplicated by its run key
            change = hashlib.sha256("|".join(f"{k}={v}" for k, v in sorted(changed.items())).encode()).hexdigest()[:12]
            requests += [RunRequest(run_key=f"{change}:{p.period_range}:{p.shard_range}:{','.join(p.assets)}",
                                    job_name="history_job", asset_selection=[AssetKey(a) for a in p.assets],
                                    tags=p.range_tags) for p in plans]
        # The cursor is the last trading day seen: days after it are new candles to infer. The
        # first tick only records it (the backlog is the user's to backfill, not the sensor's).
        days = days_def.get_partition_keys()
        new_days = [d for d in days if context.cursor and d > context.cursor]
        requests += [RunRequest(run_key=f"infer:{day}", job_name="inference_job", partition_key=day) for day in new_days]
        live = DataCalendar.read(market_db.path).last_bar
        if live is not None and days and str(live.date()) > days[-1]:
            context.log.warning(f"the database has bars up to {live.date()}, past the loaded partitions (up to "
                                f"{days[-1]}): reload the code location to extend them")
        cursor = max([context.cursor or "", *(days[-1:])])
        observations = [AssetObservation(asset_key=MARKET_DB, partition=k, tags={DATA_VERSION_TAG: v})
                        for k, v in changed.items()]
        if not requests:
            return SensorResult(skip_reason=SkipReason("no market_db partition changed and no new trading day"),
                                asset_events=observations, cursor=cursor)
        return SensorResult(run_requests=requests, asset_events=observations, cursor=cursor)

    return [symbols_sensor, market_db_sensor]
