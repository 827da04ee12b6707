"""Reconciliation group: per decision day, the executed fills against the positions proposed.

``trade_reconciliation[D]`` prices the fills that executed day ``D``'s decision (normally booked
on the next trading day) against the paper book -- implementation shortfall, fill rate, realised
vs simulated cost per symbol (`plusultra_core.reconciliation`). It reads the frames of ``D`` and
of the day before (the paper book's starting position). One bad fill anywhere in ``trades`` fails
the run with the rows named, before anything is written. The work is
`plusultra_pipeline.reconciliation_days`'s.
"""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    TimeWindowPartitionMapping,
    DataVersionsByPartition,
    observable_source_asset,
)

from plusultra_pipeline.assets.range_asset import range_asset
from plusultra_pipeline.code_versions import RECONCILIATION_CODE_VERSION
from plusultra_pipeline.constants import EXECUTED_TRADES, INFERENCE_FRAMES, RECONCILIATION_GROUP, TRADE_RECONCILIATION
from plusultra_pipeline.reconciliation_days import FILL_SIDE_CHECK, observed_fill_versions, reconcile_days
from plusultra_pipeline.reconciling import fill_versions
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def build_reconciliation_assets(settings: PipelineSettings, days_def):
    @observable_source_asset(name=EXECUTED_TRADES, group_name=RECONCILIATION_GROUP, partitions_def=days_def,
                             description="The database's trades table, per decision day: the fingerprint of the "
                                         "fills that execute it. Observed before every CLI reconciliation; only "
                                         "changed days are recorded, so a new or corrected fill marks exactly "
                                         "its day's trade_reconciliation stale.")
    def executed_trades(context, market_db: MarketDatabase) -> DataVersionsByPartition:
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
        yield from reconcile_days(settings, context.instance, store, market_db.path, context.partition_keys,
                                  context.log)

    return [executed_trades, trade_reconciliation]
