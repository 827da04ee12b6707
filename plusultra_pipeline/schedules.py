"""Schedules: retraining at every cutoff, daily inference after the close. Both default to stopped."""

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from plusultra_pipeline.settings import CADENCES, PipelineSettings


def _at_hour(cron: str, hour: int) -> str:
    """The cadence's cron at ``hour``:00 UTC instead of midnight."""
    parts = cron.split()
    parts[0], parts[1] = "0", str(hour)
    return " ".join(parts)


def build_schedules(settings: PipelineSettings, jobs: dict, cutoffs_def, days_def):
    @schedule(name="retraining_schedule", job=jobs["training_job"],
              cron_schedule=_at_hour(CADENCES[settings.training.cadence], 6),
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="At every cutoff: train the new cutoff's checkpoints.")
    def retraining_schedule(context: ScheduleEvaluationContext):
        when = context.scheduled_execution_time
        keys = cutoffs_def.get_partition_keys(current_time=when)
        due = [k for k in keys if pd.Timestamp(k) <= pd.Timestamp(when.date())]
        if not due:
            return SkipReason(f"no cutoff on or before {when.date()}")
        return RunRequest(run_key=f"train-{due[-1]}", partition_key=due[-1])

    @schedule(name="evaluation_schedule", job=jobs["evaluation_job"],
              cron_schedule=_at_hour(CADENCES[settings.training.cadence], 7),
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="At every cutoff: evaluate the fold that has just ended (the previous cutoff).")
    def evaluation_schedule(context: ScheduleEvaluationContext):
        when = context.scheduled_execution_time
        keys = [k for k in cutoffs_def.get_partition_keys(current_time=when) if pd.Timestamp(k) <= pd.Timestamp(when.date())]
        if len(keys) < 2:
            return SkipReason("no completed fold yet")
        return RunRequest(run_key=f"evaluate-{keys[-2]}", partition_key=keys[-2])

    @schedule(name="daily_inference_schedule", job=jobs["inference_job"],
              cron_schedule=f"0 {settings.inference.schedule_hour_utc} * * 1-5",
              default_status=DefaultScheduleStatus.STOPPED, execution_timezone="UTC",
              description="Weekdays after the close: inference frames for the day.")
    def daily_inference_schedule(context: ScheduleEvaluationContext):
        day = str(context.scheduled_execution_time.date())
        if day not in set(days_def.get_partition_keys(current_time=context.scheduled_execution_time)):
            return SkipReason(f"{day} is not an inference partition")
        return RunRequest(run_key=f"infer-{day}", partition_key=day)

    return [retraining_schedule, evaluation_schedule, daily_inference_schedule]
