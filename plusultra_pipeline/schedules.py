"""Schedules: retraining at every cutoff, evaluation of the fold just ended, daily inference after
the close and the reconciliation of the day's fills. All default to stopped; each skips with its reason when the data holds nothing new
(partitions end at the database's last bar, so a schedule never asks for days it lacks)."""

import pandas as pd
from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from plusultra_pipeline.constants import (EVALUATION_REPORT, INFERENCE_FRAMES, SUPERVISED_CHECKPOINT,
                                         TRADE_RECONCILIATION)
from plusultra_pipeline.settings import CADENCES, PipelineSettings


def _at_hour(cron: str, hour: int) -> str:
    """The cadence's cron at ``hour``:00 UTC instead of midnight."""
    parts = cron.split()
    parts[0], parts[1] = "0", str(hour)
    return " ".join(parts)


def _due(partitions_def, when) -> list[str]:
    """Partition keys on or before the tick's date (the definitions already end at the data)."""
    return [k for k in partitions_def.get_partition_keys() if pd.Timestamp(k) <= pd.Timestamp(when.date())]


def _request(context: ScheduleEvaluationContext, asset: str, key: str, run_key: str, what: str):
    """A run for ``asset[key]``, or a skip saying the newest partition the data allows is done."""
    if key in context.instance.get_materialized_partitions(AssetKey(asset)):
        return SkipReason(f"nothing new in the data: {asset}[{key}] is already materialised ({what})")
    return RunRequest(run_key=run_key, partition_key=key)


def build_schedules(settings: PipelineSettings, jobs: dict, cutoffs_def, days_def):
    @schedule(name="retraining_schedule", job=jobs["training_job"],
              cron_schedule=_at_hour(CADENCES[settings.training.cadence], 6),
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="At every cutoff: train the newest cutoff the data reaches.")
    def retraining_schedule(context: ScheduleEvaluationContext):
        due = _due(cutoffs_def, context.scheduled_execution_time)
        if not due:
            return SkipReason(f"no cutoff on or before {context.scheduled_execution_time.date()} within the data")
        return _request(context, SUPERVISED_CHECKPOINT, due[-1], f"train-{due[-1]}", "no newer cutoff in the data")

    @schedule(name="evaluation_schedule", job=jobs["evaluation_job"],
              cron_schedule=_at_hour(CADENCES[settings.training.cadence], 7),
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="At every cutoff: evaluate the fold that has just ended (the previous cutoff).")
    def evaluation_schedule(context: ScheduleEvaluationContext):
        due = _due(cutoffs_def, context.scheduled_execution_time)
        if len(due) < 2:
            return SkipReason("no completed fold within the data yet")
        return _request(context, EVALUATION_REPORT, due[-2], f"evaluate-{due[-2]}", "no newer completed fold")

    @schedule(name="daily_inference_schedule", job=jobs["inference_job"],
              cron_schedule=f"0 {settings.inference.schedule_hour_utc} * * 1-5",
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="Weekdays after the close: inference frames for the newest trading day in the data.")
    def daily_inference_schedule(context: ScheduleEvaluationContext):
        due = _due(days_def, context.scheduled_execution_time)
        if not due:
            return SkipReason("no trading day with bars on or before this tick")
        return _request(context, INFERENCE_FRAMES, due[-1], f"infer-{due[-1]}", "no newer trading day has bars")

    @schedule(name="daily_reconciliation_schedule", job=jobs["reconciliation_job"],
              cron_schedule=f"30 {settings.inference.schedule_hour_utc} * * 1-5",
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="Weekdays after the close: the fills of the newest trading day against the decision "
                          "they executed (the trading day before).")
    def daily_reconciliation_schedule(context: ScheduleEvaluationContext):
        due = _due(days_def, context.scheduled_execution_time)
        if len(due) < 2:  # the newest day's fills execute the decision of the day before it
            return SkipReason("no decision day whose fills (the next trading day's) are in the data yet")
        return _request(context, TRADE_RECONCILIATION, due[-2], f"reconcile-{due[-2]}",
                        "no newer decision day with a next trading day")

    return [retraining_schedule, evaluation_schedule, daily_inference_schedule, daily_reconciliation_schedule]
