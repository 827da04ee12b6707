"""Reconciliation group: per decision day, the executed fills against the positions proposed.

``trade_reconciliation[D]`` prices the fills that executed day ``D``'s decision (normally booked
on the next trading day) against the paper book -- implementation shortfall, fill rate, realised
vs simulated cost per symbol (`plusultra_core.reconciliation`). It reads the frames of ``D`` and
of the day before (the paper book's starting position). One bad fill anywhere in ``trades`` fails
the run with the rows named, before anything is written.
"""

from dagster import (
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MetadataValue,
    TimeWindowPartitionMapping,
    AssetKey,
    DagsterEventType,
    DataVersionsByPartition,
    observable_source_asset,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from plusultra_core.errors import DataValidationError
from plusultra_pipeline.assets.range_asset import range_asset
from plusultra_pipeline.constants import EXECUTED_TRADES, INFERENCE_FRAMES, RECONCILIATION_GROUP, TRADE_RECONCILIATION
from plusultra_pipeline.events import event_pointer, frame_version, partition_check, partition_materialization
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings

RECONCILIATION_CODE_VERSION = "1"
FILL_SIDE_CHECK = "fills_on_the_proposed_side"


def _rounded(summary: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) and v == v else v) for k, v in summary.items()
            if not (isinstance(v, float) and v != v)}  # NaN is not valid metadata


def observed_fill_versions(instance) -> dict[str, str]:
    """The latest observed fingerprint of every `executed_trades` day."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        AssetKey(EXECUTED_TRADES), DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
    return {key: t[DATA_VERSION_TAG] for key, t in tags.items() if DATA_VERSION_TAG in t}


def build_reconciliation_assets(settings: PipelineSettings, days_def):
    @observable_source_asset(name=EXECUTED_TRADES, group_name=RECONCILIATION_GROUP, partitions_def=days_def,
                             description="The database's trades table, per decision day: the fingerprint of the "
                                         "fills that execute it. Observed before every CLI reconciliation; only "
                                         "changed days are recorded, so a new or corrected fill marks exactly "
                                         "its day's trade_reconciliation stale.")
    def executed_trades(context, market_db: MarketDatabase) -> DataVersionsByPartition:
        from plusultra_pipeline.reconciling import fill_versions

        seen = observed_fill_versions(context.instance)
        current = fill_versions(market_db.path, days_def.get_partition_keys())
        changed = {d: v for d, v in current.items() if seen.get(d) != v}
        context.log.info(f"{len(changed)} executed_trades day(s) new or changed")
        return DataVersionsByPartition(changed)

    @range_asset(
        AssetSpec(TRADE_RECONCILIATION, partitions_def=days_def, group_name=RECONCILIATION_GROUP,
                  deps=[AssetDep(INFERENCE_FRAMES, partition_mapping=TimeWindowPartitionMapping(start_offset=-1)),
                        executed_trades],
                  code_version=RECONCILIATION_CODE_VERSION, kinds={"pandas", "parquet"},
                  description="Executed fills (the database's trades) vs the positions the decision day "
                              "proposed: implementation shortfall, fill rate, realised vs simulated cost."),
        checks=[(FILL_SIDE_CHECK, "No fill trades against its paper order (buys where the book sold).")],
    )
    def trade_reconciliation(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        from plusultra_core.reconciliation import Reconciliation
        from plusultra_pipeline.reconciling import reconcile_stored_days

        days = list(context.partition_keys)
        store_ = store.store()
        try:
            result = reconcile_stored_days(settings, store_, market_db.path, days)
        except DataValidationError as exc:  # bad fills: named, nothing written
            cases = exc.failure_cases
            raise Failure(description=str(exc), metadata={
                "bad_fills": MetadataValue.text(cases.head(50).to_string() if cases is not None else "")}) from None
        pointer = event_pointer(context.instance)
        fills_seen = observed_fill_versions(context.instance)
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
        context.log.info(f"reconciliation: {len(days)} day(s) {days[0]}..{days[-1]}, {total['fills']} fills, "
                         f"fill rate {total['fill_rate']:.1%}, realised cost {total['realised_cost_bps']:.1f} bps "
                         f"vs simulated {total['simulated_cost_bps']:g} bps")

    return [executed_trades, trade_reconciliation]
