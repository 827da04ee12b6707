"""The three history assets as ONE Dagster multi-asset (op ``history``), each a stage of it.

Every partition of a single-run range needs its own materialisation event (own metadata, own
content data version), which the stages log themselves. An asset that logs its own events
yields no output, and Dagster skips the steps downstream of an output that was not yielded, so
`validated_bars` -> `feature_panel` -> `window_tensors` cannot be separate steps of one run.
As stages of one subsettable multi-asset they run in order inside one step, each only when
selected; the asset graph, partition mappings, code versions and checks stay per asset. The
stages share one `RunSource`: the database's shard map and fingerprints are read once per run.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Sequence

from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, BackfillPolicy, multi_asset

from plusultra_pipeline.resources import MarketDatabase, PartitionStore

HISTORY_OP = "history"


class RunSource:
    """What the stages of one run read about the market database, read once: the dataset, its
    ``symbol -> shard`` map and its per-symbol × period fingerprints."""

    def __init__(self, market_db: MarketDatabase, period: str):
        self.market_db, self.period = market_db, period

    @cached_property
    def dataset(self):
        return self.market_db.dataset()

    @cached_property
    def shard_of(self) -> dict[str, str]:
        return self.market_db.shard_map(self.dataset)

    @cached_property
    def fingerprints(self):
        """`SQLiteMarketDataset.partition_fingerprints` at the history period."""
        return self.dataset.partition_fingerprints(self.period)


@dataclass(frozen=True)
class HistoryStage:
    spec: AssetSpec
    checks: Sequence[AssetCheckSpec]
    run: Callable  # (context, source: RunSource, store) -> iterator of per-partition events


def history_multi_asset(stages: Sequence[HistoryStage], period: str):
    """One op over ``stages`` (in dependency order) for the run's partition range."""
    @multi_asset(name=HISTORY_OP, specs=[s.spec for s in stages], check_specs=[c for s in stages for c in s.checks],
                 backfill_policy=BackfillPolicy.single_run(), can_subset=True)
    def history(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Validated bars -> causal features -> window tensors for the selected assets of a range."""
        source = RunSource(market_db, period)
        for stage in stages:
            if stage.spec.key in context.selected_asset_keys:
                yield from stage.run(context, source, store)

    return history
