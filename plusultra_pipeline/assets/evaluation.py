"""Evaluation group: the out-of-sample report of each walk-forward fold, and the leaderboard.

A fold scores every seed's model, their ensemble and the baselines on ``[cutoff, next cutoff)``
(its last decision earns the first bar after it) and records each model configuration in the
store's trial ledger; the leaderboard re-books all folds as one continuous record and states the
verdict, with the deflated Sharpe counting every configuration the ledger has seen. The work is
`plusultra_pipeline.folds`'s; the assets here declare what it depends on.
"""

from dagster import (
    AllPartitionMapping,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Nothing,
    TimeWindowPartitionMapping,
    asset,
)

from plusultra_pipeline.constants import (
    EVALUATION_GROUP,
    EVALUATION_REPORT,
    LEADERBOARD,
    RL_CHECKPOINT,
    SUPERVISED_CHECKPOINT,
    TRADE_RECONCILIATION,
    TRAINING_SET,
)
from plusultra_pipeline.code_versions import evaluation_code_version
from plusultra_pipeline.folds import COVERAGE_CHECK, report_fold, report_leaderboard
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def build_evaluation_assets(settings: PipelineSettings, cutoffs_def):
    @asset(
        name=EVALUATION_REPORT,
        partitions_def=cutoffs_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        # the fold scores [C, next C) plus the first bars after it: the training sets of C and the
        # next two cutoffs hold every partition it reads
        deps=[SUPERVISED_CHECKPOINT, *([RL_CHECKPOINT] if settings.training.rl_enabled else []),
              AssetDep(TRAINING_SET, partition_mapping=TimeWindowPartitionMapping(start_offset=0, end_offset=2)),
              # booking the realised cost makes every fold depend on every reconciled day
              *([AssetDep(TRADE_RECONCILIATION, partition_mapping=AllPartitionMapping())]
                if settings.evaluation.cost_source == "realised" else [])],
        group_name=EVALUATION_GROUP,
        code_version=evaluation_code_version(settings),
        kinds={"pandas", "matplotlib"},
        check_specs=[AssetCheckSpec(COVERAGE_CHECK, asset=EVALUATION_REPORT, partitions_def=cutoffs_def,
                                    description="Every decision day of the fold is scored, except days the data "
                                                "has no next bar for (the end of the data).")],
    )
    def evaluation_report(context: AssetExecutionContext, store: PartitionStore, market_db: MarketDatabase):
        """Out-of-sample fold report: every seed's model and their ensemble (and, with RL on, the RL fine-tunes) from the cutoff to the next one, net of costs, beside baselines."""
        window = context.partition_time_window
        report, coverage = report_fold(settings, store, market_db.path, str(window.start.date()),
                                       str(window.end.date()), context.log)
        yield report
        yield coverage

    @asset(
        name=LEADERBOARD,
        ins={EVALUATION_REPORT: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing)},
        group_name=EVALUATION_GROUP,
        code_version=evaluation_code_version(settings),
        kinds={"pandas", "matplotlib"},
    )
    def leaderboard(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Every materialised fold re-booked as one continuous out-of-sample record per strategy, with its verdict."""
        return report_leaderboard(settings, store, market_db.path, context.log)

    return evaluation_report, leaderboard
