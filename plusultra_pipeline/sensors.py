"""Sensors: keep the `symbols` partitions in step with `assets`; react to new candles.

Both default to stopped, as Dagster users expect: turn them on in the UI (or `dagster sensor start`).
"""


import hashlib

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from plusultra_pipeline.constants import SYMBOLS_PARTITIONS
from plusultra_pipeline.incremental import new_trading_days, plan_stale_history
from plusultra_pipeline.partitions import period_partitions, symbols_partitions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def build_sensors(settings: PipelineSettings, jobs: dict, lookback_periods: int, days_def):
    periods_def = period_partitions(settings.history)

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
            description="Notices changed or new candles in the SQLite file and requests single runs "
                        "over exactly the affected history partitions, plus inference for new trading days.")
    def market_db_sensor(context: SensorEvaluationContext, market_db: MarketDatabase, store: PartitionStore):
        dataset = market_db.dataset()
        shard_of = market_db.shard_map(dataset)
        shard_order = list(context.instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
        missing = sorted(set(shard_of.values()) - set(shard_order))
        if missing:
            return SkipReason(f"symbol partitions not registered yet: {missing[:5]} (run symbols_sensor)")
        store_ = store.store()
        stale, plans = plan_stale_history(dataset, shard_of, store_, settings, lookback_periods,
                                          shard_order, periods_def.get_partition_keys())
        if not plans:
            return SkipReason("no history partition changed")
        # The same change requested twice is deduplicated by its run key.
        change = hashlib.sha256("|".join(f"{r.shard}/{r.period}" for r in stale).encode()).hexdigest()[:12]
        requests = [RunRequest(run_key=f"{change}:{p.period_range}:{p.shard_range}:{','.join(p.assets)}",
                               job_name="history_job", asset_selection=[AssetKey(a) for a in p.assets],
                               tags=p.range_tags)
                    for p in plans]
        days = set(days_def.get_partition_keys())
        for day in new_trading_days(dataset, store_, stale):
            if day in days:
                requests.append(RunRequest(run_key=f"{change}:infer:{day}", job_name="inference_job",
                                           partition_key=day))
        return requests

    return [symbols_sensor, market_db_sensor]
