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


def _newest_due_schedule(name: str, job, cron: str, description: str, partitions_def, asset: str, *,
                         back: int, run_prefix: str, too_few: str, done: str):
    """A stopped UTC schedule asking for ``asset``'s partition ``back`` places before the newest one
    due at the tick (0: the newest itself), as run ``<run_prefix>-<key>``. It skips saying
    ``too_few`` (where ``{day}`` is the tick's date) when fewer partitions are due, and ``done``
    (see `_request`) when that partition is materialised already."""
    @schedule(name=name, job=job, cron_schedule=cron, default_status=DefaultScheduleStatus.STOPPED,
              execution_timezone="UTC", description=description)
    def newest_due(context: ScheduleEvaluationContext):
        due = _due(partitions_def, context.scheduled_execution_time)
        if len(due) <= back:
            return SkipReason(too_few.format(day=context.scheduled_execution_time.date()))
        key = due[-1 - back]
        return _request(context, asset, key, f"{run_prefix}-{key}", done)
    return newest_due


def build_schedules(settings: PipelineSettings, jobs: dict, cutoffs_def, days_def):
    """Retraining and evaluation at every cutoff, inference and reconciliation every weekday."""
    cadence = CADENCES[settings.training.cadence]
    close = settings.inference.schedule_hour_utc
    return [
        _newest_due_schedule(
            "retraining_schedule", jobs["training_job"], _at_hour(cadence, 6),
            "At every cutoff: train the newest cutoff the data reaches.",
            cutoffs_def, SUPERVISED_CHECKPOINT, back=0, run_prefix="train",
            too_few="no cutoff on or before {day} within the data", done="no newer cutoff in the data"),
        _newest_due_schedule(
            "evaluation_schedule", jobs["evaluation_job"], _at_hour(cadence, 7),
            "At every cutoff: evaluate the fold that has just ended (the previous cutoff).",
            cutoffs_def, EVALUATION_REPORT, back=1, run_prefix="evaluate",
            too_few="no completed fold within the data yet", done="no newer completed fold"),
        _newest_due_schedule(
            "daily_inference_schedule", jobs["inference_job"], f"0 {close} * * 1-5",
            "Weekdays after the close: inference frames for the newest trading day in the data.",
            days_def, INFERENCE_FRAMES, back=0, run_prefix="infer",
            too_few="no trading day with bars on or before this tick", done="no newer trading day has bars"),
        # back=1: the newest day's fills execute the decision of the day before it
        _newest_due_schedule(
            "daily_reconciliation_schedule", jobs["reconciliation_job"], f"30 {close} * * 1-5",
            "Weekdays after the close: the fills of the newest trading day against the decision "
            "they executed (the trading day before).",
            days_def, TRADE_RECONCILIATION, back=1, run_prefix="reconcile",
            too_few="no decision day whose fills (the next trading day's) are in the data yet",
            done="no newer decision day with a next trading day"),
    ]
