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

from plusultra_core.data.periods import PERIODS
from plusultra_core.errors import PartitionKeyError
from plusultra_pipeline.constants import PERIOD_DIM, SYMBOL_DIM, SYMBOLS_PARTITIONS
from plusultra_pipeline.settings import HistoryConfig

symbols_partitions = DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS)


def period_partitions(history: HistoryConfig) -> TimeWindowPartitionsDefinition:
    """Time windows at the history cadence; ``end_offset=1`` keeps the current, open period."""
    cron, fmt, _ = PERIODS[history.period]
    return TimeWindowPartitionsDefinition(cron_schedule=cron, start=history.start, fmt=fmt,
                                          end_offset=1)


def history_partitions(history: HistoryConfig) -> MultiPartitionsDefinition:
    """symbol (dynamic, filled by a sensor from `assets`) x period."""
    return MultiPartitionsDefinition({SYMBOL_DIM: symbols_partitions,
                                      PERIOD_DIM: period_partitions(history)})


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


def make_key(shard: str, period: str) -> MultiPartitionKey:
    return MultiPartitionKey({SYMBOL_DIM: shard, PERIOD_DIM: period})


def cutoff_partitions(training) -> TimeWindowPartitionsDefinition:
    """One partition per training cutoff; partition ``C`` covers ``[C, next C)``, its fold's
    out-of-sample period. ``end_offset=1`` exposes the current (open) period's cutoff."""
    from plusultra_pipeline.settings import CADENCES

    return TimeWindowPartitionsDefinition(cron_schedule=CADENCES[training.cadence], start=training.first_cutoff,
                                          fmt="%Y-%m-%d", end_offset=1)


def trading_day_partitions(inference) -> TimeWindowPartitionsDefinition:
    """Weekday calendar (Mon-Fri) of inference days, including today's (``end_offset=1``)."""
    return TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1-5", start=inference.first_day,
                                          fmt="%Y-%m-%d", end_offset=1)
