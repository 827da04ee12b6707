"""Partition definitions and mappings of the history assets (symbol shard x period)."""

from __future__ import annotations

from dagster import (
    AllPartitionMapping,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
)

import pandas as pd

from plusultra_core.data.periods import PERIODS
from plusultra_core.errors import PartitionKeyError
from plusultra_pipeline.calendar import DataCalendar
from plusultra_pipeline.constants import PERIOD_DIM, SYMBOL_DIM, SYMBOLS_PARTITIONS
from plusultra_pipeline.settings import HistoryConfig

symbols_partitions = DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS)


def _bounded(cron: str, start, fmt: str, calendar: DataCalendar, exclusions=None) -> TimeWindowPartitionsDefinition:
    """Windows of ``cron`` from ``start`` up to and including the one holding the data's last bar
    (none past it: a catalog after a complete run is complete). No data: no partitions."""
    start = pd.Timestamp(start).to_pydatetime()
    if calendar.last_bar is None or calendar.last_bar < pd.Timestamp(start):
        return TimeWindowPartitionsDefinition(cron_schedule=cron, start=start, end=start, fmt=fmt)
    open_ended = TimeWindowPartitionsDefinition(cron_schedule=cron, start=start, fmt=fmt, end_offset=1)
    last = open_ended.get_partition_keys(current_time=calendar.last_bar.to_pydatetime())[-1]
    end = open_ended.time_window_for_partition_key(last).end
    # end_offset=1 keeps the open window of "now" (today's day, the current cutoff) as before;
    # ``end`` caps every range at the data
    return TimeWindowPartitionsDefinition(cron_schedule=cron, start=start, end=end, fmt=fmt, end_offset=1,
                                          exclusions=[d.to_pydatetime() for d in exclusions or []] or None)


def period_partitions(history: HistoryConfig, calendar: DataCalendar) -> TimeWindowPartitionsDefinition:
    """Time windows at the history cadence, up to the period holding the last bar."""
    cron, fmt, _ = PERIODS[history.period]
    return _bounded(cron, pd.Timestamp(history.start), fmt, calendar)


def history_partitions(history: HistoryConfig, calendar: DataCalendar) -> MultiPartitionsDefinition:
    """symbol (dynamic, filled by a sensor from `assets`) x period."""
    return MultiPartitionsDefinition({SYMBOL_DIM: symbols_partitions,
                                      PERIOD_DIM: period_partitions(history, calendar)})


def lookback_mapping(periods: int = 1) -> MultiPartitionMapping:
    """Same shard, this period and the ``periods`` before it (long rolling windows need them)."""
    return MultiPartitionMapping({
        SYMBOL_DIM: DimensionPartitionMapping(SYMBOL_DIM, IdentityPartitionMapping()),
        PERIOD_DIM: DimensionPartitionMapping(PERIOD_DIM, TimeWindowPartitionMapping(start_offset=-periods)),
    })


def universe_lookback_mapping(periods: int = 1) -> MultiPartitionMapping:
    """Every shard, this period and the ``periods`` before it: cross-sectional features compare a
    shard's symbols with every tradable symbol, so each partition reads the whole universe."""
    return MultiPartitionMapping({
        SYMBOL_DIM: DimensionPartitionMapping(SYMBOL_DIM, AllPartitionMapping()),
        PERIOD_DIM: DimensionPartitionMapping(PERIOD_DIM, TimeWindowPartitionMapping(start_offset=-periods)),
    })


def split_key(key) -> tuple[str, str]:
    """``(shard, period)`` of a multi-partition key (object or ``"period|shard"`` string)."""
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims[SYMBOL_DIM], dims[PERIOD_DIM]
    parts = str(key).split("|")
    if len(parts) != 2:
        raise PartitionKeyError(f"partition key '{key}' is not '<period>|<symbol>'")
    return parts[1], parts[0]  # dimensions are ordered by name: period before symbol


def history_key(shard: str, period: str) -> str:
    """The string form of a history partition key (dimensions ordered by name: period|symbol)."""
    return f"{period}|{shard}"


def cutoff_partitions(training, calendar: DataCalendar) -> TimeWindowPartitionsDefinition:
    """One partition per training cutoff up to the data's last bar; partition ``C`` covers
    ``[C, next C)``, its fold's out-of-sample period."""
    from plusultra_pipeline.settings import CADENCES

    return _bounded(CADENCES[training.cadence], training.first_cutoff, "%Y-%m-%d", calendar)


def trading_day_partitions(inference, calendar: DataCalendar) -> TimeWindowPartitionsDefinition:
    """The days the database has bars for, from ``inference.first_day`` to the last bar: weekdays
    minus the weekdays without any bar (holidays are no partitions)."""
    first = pd.Timestamp(inference.first_day)
    return _bounded("0 0 * * 1-5", first, "%Y-%m-%d", calendar, exclusions=calendar.holidays(first))


def serving_cutoff_mapping() -> TimeWindowPartitionMapping:
    """Inference day ``D`` <- the cutoff whose window ``[C, next C)`` holds ``D``: the newest model
    trained without ``D``'s data, and the one the fold of ``C`` scores on ``D``."""
    return TimeWindowPartitionMapping()
