"""Inference group: per trading day, the cutoff whose window holds the day proposes positions.

Day ``D`` is served by cutoff ``C`` with ``C <= D < next C`` (`partitions.serving_cutoff_mapping`):
the model its fold scores on ``D``. A cutoff with several seeds serves their ensemble (mean
decision, `SeedEnsemble`), the strategy the evaluation scores as ``<architecture>/ensemble``.
Every day gets its own event whose input points at the checkpoint materialisation that produced
it, so Dagster marks exactly the days of a retrained cutoff stale. The work is
`plusultra_pipeline.inferring`'s.
"""

from dagster import AssetDep, AssetExecutionContext, AssetSpec

from plusultra_pipeline.code_versions import INFERENCE_CODE_VERSION
from plusultra_pipeline.constants import INFERENCE_FRAMES, INFERENCE_GROUP, SUPERVISED_CHECKPOINT
from plusultra_pipeline.assets.range_asset import range_asset
from plusultra_pipeline.inferring import POSITIONS_CHECK, ROWS_CHECK, infer_days
from plusultra_pipeline.partitions import serving_cutoff_mapping
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def build_inference_assets(settings: PipelineSettings, days_def, cutoffs_def):
    @range_asset(
        AssetSpec(INFERENCE_FRAMES, partitions_def=days_def, group_name=INFERENCE_GROUP,
                  deps=[AssetDep(SUPERVISED_CHECKPOINT, partition_mapping=serving_cutoff_mapping())],
                  code_version=INFERENCE_CODE_VERSION, kinds={"pytorch", "parquet"},
                  description="Per symbol and trading day: action probabilities, position, expected "
                              "return and risk analytics."),
        checks=[(ROWS_CHECK, "One row per tradable symbol with a valid bar that day."),
                (POSITIONS_CHECK, "Every position is finite and within [-1, 1].")],
    )
    def inference_frames(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        yield from infer_days(settings, context.instance, store, market_db.path, cutoffs_def.get_partition_keys(),
                              context.partition_keys, context.log)

    return inference_frames
