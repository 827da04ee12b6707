"""The three history assets as ONE Dagster multi-asset (op ``history``), each a stage of it.

Every partition of a single-run range needs its own materialisation event (own metadata, own
content data version), which the stages log themselves. An asset that logs its own events
yields no output, and Dagster skips the steps downstream of an output that was not yielded, so
`validated_bars` -> `feature_panel` -> `window_tensors` cannot be separate steps of one run.
As stages of one subsettable multi-asset they run in order inside one step, each only when
selected; the asset graph, partition mappings, code versions and checks stay per asset.
"""

from dataclasses import dataclass
from typing import Callable, Sequence

from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, BackfillPolicy, multi_asset

from plusultra_pipeline.resources import MarketDatabase, PartitionStore

HISTORY_OP = "history"


@dataclass(frozen=True)
class HistoryStage:
    spec: AssetSpec
    checks: Sequence[AssetCheckSpec]
    run: Callable  # (context, market_db, store) -> iterator of per-partition events


def history_multi_asset(stages: Sequence[HistoryStage]):
    """One op over ``stages`` (in dependency order) for the run's partition range."""
    @multi_asset(name=HISTORY_OP, specs=[s.spec for s in stages], check_specs=[c for s in stages for c in s.checks],
                 backfill_policy=BackfillPolicy.single_run(), can_subset=True)
    def history(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Validated bars -> causal features -> window tensors for the selected assets of a range."""
        for stage in stages:
            if stage.spec.key in context.selected_asset_keys:
                yield from stage.run(context, market_db, store)

    return history
