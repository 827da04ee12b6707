"""Reconciliation of a range of decision days as the `trade_reconciliation` asset runs it.

`reconcile_days` reconciles the days (`reconciling.reconcile_stored_days`, the path `plusultra
reconcile` shares), stores each day's table and yields each day's Dagster events: its
materialisation, whose inputs are the day's inference frame version and the fingerprint of its
fills last observed on `executed_trades` (`observed_fill_versions`), and its fill-side check.
Separate from `reconciling` so the CLI's reconciliation never imports Dagster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, Failure, MetadataValue
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from plusultra_core.errors import DataValidationError
from plusultra_pipeline.code_versions import RECONCILIATION_CODE_VERSION
from plusultra_pipeline.constants import EXECUTED_TRADES, INFERENCE_FRAMES, TRADE_RECONCILIATION
from plusultra_pipeline.events import event_pointer, frame_version, partition_check, partition_materialization
from plusultra_pipeline.reconciling import reconcile_stored_days
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings

FILL_SIDE_CHECK = "fills_on_the_proposed_side"


def observed_fill_versions(instance) -> dict[str, str]:
    """The latest observed fingerprint of every `executed_trades` day."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        AssetKey(EXECUTED_TRADES), DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
    return {key: t[DATA_VERSION_TAG] for key, t in tags.items() if DATA_VERSION_TAG in t}


def _rounded(summary: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) and v == v else v) for k, v in summary.items()
            if not (isinstance(v, float) and v != v)}  # NaN is not valid metadata


def reconcile_days(settings: PipelineSettings, instance, store: PartitionStore, database: str | Path,
                   days: Sequence[str], log) -> Iterator:
    """Reconcile decision ``days`` (`reconcile_stored_days`), store each day's table and yield, per
    day, its `partition_materialization` (inputs: the day's inference frame version and its observed
    fills' fingerprint) and its `FILL_SIDE_CHECK`; log the totals to ``log``.

    Raises `Failure` naming the bad fills (nothing written) when ``trades`` has any.
    """
    from plusultra_core.reconciliation import Reconciliation

    days = list(days)
    store_ = store.store()
    try:
        result = reconcile_stored_days(settings, store_, database, days)
    except DataValidationError as exc:  # bad fills: named, nothing written
        cases = exc.failure_cases
        raise Failure(description=str(exc), metadata={
            "bad_fills": MetadataValue.text(cases.head(50).to_string() if cases is not None else "")}) from None
    pointer = event_pointer(instance)
    fills_seen = observed_fill_versions(instance)
    by_day = dict(tuple(result.table.groupby(result.table["day"].dt.strftime("%Y-%m-%d"))))
    for day in days:
        part = by_day.get(day, result.table.iloc[:0]).reset_index(drop=True)
        version = frame_version(part)
        frame_meta = (store_.read_metadata(INFERENCE_FRAMES, {"day": day}) or {}).get("metadata", {})
        summary = Reconciliation(table=part, cost_bps=result.cost_bps).summary()
        stored = store_.write(TRADE_RECONCILIATION, {"day": day}, part,
                              metadata={"data_version": version, "summary": summary,
                                        "inference_frame_version": frame_meta.get("data_version")})
        yield partition_materialization(TRADE_RECONCILIATION, day, version, RECONCILIATION_CODE_VERSION,
                                        {INFERENCE_FRAMES: frame_meta.get("data_version", "unknown"),
                                         EXECUTED_TRADES: fills_seen.get(day, "unknown")}, pointer,
                                        {**_rounded(summary), "path": MetadataValue.path(str(stored.path))})
        wrong_side = int(((part["filled_shares"] * part["intended_shares"]) < 0).sum()) if len(part) else 0
        # a desk trading against the model is a fact to show, not a broken pipeline: a warning
        yield partition_check(TRADE_RECONCILIATION, FILL_SIDE_CHECK, day, wrong_side == 0,
                              {"symbols_filled_against_the_order": wrong_side}, severity=AssetCheckSeverity.WARN)
    total = result.summary()
    log.info(f"reconciliation: {len(days)} day(s) {days[0]}..{days[-1]}, {total['fills']} fills, "
             f"fill rate {total['fill_rate']:.1%}, realised cost {total['realised_cost_bps']:.1f} bps "
             f"vs simulated {total['simulated_cost_bps']:g} bps")
