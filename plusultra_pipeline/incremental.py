"""The few single runs that rebuild the history partitions Dagster calls stale or missing.

Dagster (`plusultra_pipeline.staleness`) says which partitions of each history asset are to do:
a `validated_bars` partition whose `market_db` partition was observed with a new fingerprint,
or any partition of an asset whose code version changed. Dagster judges only direct inputs,
so the plan adds what a rebuilt partition will make stale in turn: the feature partitions whose
lookback reads it (the next periods). The result is grouped into as few single runs as
possible: one per period range × contiguous block of shards.

With cross-sectional features selected, a stale partition changes the ranks of every shard in
its period and the lookback periods after it: those feature partitions are all rebuilt, after
every stale `validated_bars` partition (a feature run reads the universe's bars, so it must not
run before another shard's bars of the same window are refreshed). An incremental update then
equals a rebuild; a new day of every shard is still a single run.
"""

from __future__ import annotations

from dataclasses import dataclass

from plusultra_core.history import PartitionRef
from plusultra_pipeline.constants import FEATURE_PANEL, VALIDATED_BARS, WINDOW_TENSORS


@dataclass(frozen=True)
class RunPlan:
    """One single run: ``assets`` over the box of periods × shards (inclusive ranges)."""

    assets: tuple[str, ...]
    period_range: tuple[str, str]
    shard_range: tuple[str, str]

    @property
    def range_tags(self) -> dict[str, str]:
        """Dagster tags that make a run cover the multi-partition range (period|symbol keys)."""
        return {"dagster/asset_partition_range_start": f"{self.period_range[0]}|{self.shard_range[0]}",
                "dagster/asset_partition_range_end": f"{self.period_range[1]}|{self.shard_range[1]}"}


def plan_runs(stale: list[PartitionRef], shard_order: list[str], period_order: list[str],
              lookback_periods: int = 1, materialized: set[PartitionRef] | None = None,
              cross_sectional: bool = False, feature_roots: set[PartitionRef] = frozenset(),
              tensor_roots: set[PartitionRef] = frozenset()) -> list[RunPlan]:
    """Runs that rebuild ``stale`` partitions and every feature partition whose lookback reads them,
    plus ``feature_roots`` / ``tensor_roots`` (partitions of the later assets that are to do on their
    own, e.g. after a feature-code change).

    Following periods are only added when they were ``materialized`` before (``None``: assume
    all were), so a first full build does not create empty partitions past each symbol's data.
    Plans are ordered by their first period, so running them in order respects the lookback.

    ``cross_sectional``: the features rank across every shard, so the feature partitions of every
    shard in a stale period and its lookback periods are rebuilt too (those stale or
    materialized), never before the `validated_bars` runs of all stale partitions
    (`_cross_sectional_plans`).
    """
    if not (stale or feature_roots or tensor_roots):
        return []
    stale_set = set(stale)
    pos = {p: i for i, p in enumerate(period_order)}
    affected = {}  # period -> shards whose features read the stale bars
    for ref in stale:
        i = pos[ref.period]
        for k in range(0, lookback_periods + 1):
            if i + k < len(period_order):
                affected.setdefault(period_order[i + k], set()).update(shard_order if cross_sectional else [ref.shard])
    features = {PartitionRef(shard, per) for per, shards in affected.items() for shard in shards}
    features = {r for r in features if r in stale_set or materialized is None or r in materialized}
    features |= set(feature_roots)
    tensors_only = set(tensor_roots) - features - stale_set
    if cross_sectional:
        plans = _cross_sectional_plans(stale_set, features, shard_order, period_order)
    else:
        plans = []
        for assets, refs in (((VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS), stale_set),
                             ((FEATURE_PANEL, WINDOW_TENSORS), features - stale_set)):
            plans.extend(_boxes(assets, refs, shard_order, period_order))
        plans = sorted(plans, key=lambda p: (pos[p.period_range[0]], -len(p.assets)))
    return plans + _boxes((WINDOW_TENSORS,), tensors_only, shard_order, period_order)


def _cross_sectional_plans(stale: set[PartitionRef], features: set[PartitionRef], shard_order, period_order) -> list[RunPlan]:
    """Plans when features read every shard's bars: no feature run may precede a bars run.

    Either every stale box's bars first, then every feature partition (two phases), or, when the
    stale partitions form a single box, that box as one run of all three assets (its features
    run after its bars within the run, and no other bars are stale) followed by the remaining
    feature partitions. Whichever needs fewer runs (a new day of every shard: one run).
    """
    pos = {p: i for i, p in enumerate(period_order)}
    by_period = lambda plans: sorted(plans, key=lambda p: pos[p.period_range[0]])  # noqa: E731
    if not stale:
        return by_period(_boxes((FEATURE_PANEL, WINDOW_TENSORS), features, shard_order, period_order))
    ingest = _boxes((VALIDATED_BARS,), stale, shard_order, period_order)
    options = []
    if len(ingest) == 1:  # preferred on a tie: each partition's bars and features in one run
        whole = RunPlan((VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS), ingest[0].period_range, ingest[0].shard_range)
        options.append([whole] + by_period(_boxes((FEATURE_PANEL, WINDOW_TENSORS), features - stale,
                                                  shard_order, period_order)))
    options.append(by_period(ingest) + by_period(_boxes((FEATURE_PANEL, WINDOW_TENSORS), features,
                                                        shard_order, period_order)))
    return min(options, key=len)


def _boxes(assets, refs, shard_order, period_order) -> list[RunPlan]:
    """Cover ``refs`` with boxes: contiguous shard blocks per period, merged across adjacent periods."""
    if not refs:
        return []
    shard_pos = {s: i for i, s in enumerate(shard_order)}
    by_period: dict[str, list[int]] = {}
    for ref in refs:
        by_period.setdefault(ref.period, []).append(shard_pos[ref.shard])
    blocks_by_period = {}
    for per, positions in by_period.items():
        positions = sorted(positions)
        blocks, start = [], positions[0]
        for prev, cur in zip(positions, positions[1:] + [None]):
            if cur is None or cur != prev + 1:
                blocks.append((start, prev))
                start = cur
        blocks_by_period[per] = tuple(blocks)
    plans, open_boxes = [], {}
    for per in period_order:  # merge identical blocks of consecutive periods
        blocks = blocks_by_period.get(per, ())
        for block in list(open_boxes):
            if block not in blocks:
                first, last = open_boxes.pop(block)
                plans.append(RunPlan(assets, (first, last), (shard_order[block[0]], shard_order[block[1]])))
        for block in blocks:
            first, _ = open_boxes.get(block, (per, per))
            open_boxes[block] = (first, per)
    for block, (first, last) in open_boxes.items():
        plans.append(RunPlan(assets, (first, last), (shard_order[block[0]], shard_order[block[1]])))
    return plans


def materialized_refs(store, asset: str = FEATURE_PANEL) -> set[PartitionRef]:
    """Partitions of ``asset`` present in the store."""
    return {PartitionRef(p["shard"], p["period"]) for p in store.list_partitions(asset)}


def parallel_waves(plans: list[RunPlan], shard_order: list[str], processes: int,
                   cross_sectional: bool = False) -> list[list[RunPlan]]:
    """``plans`` as waves of runs that may execute at the same time, the waves in order.

    Each plan's shard block is cut into up to ``processes`` contiguous slices over the same
    periods: a slice's lookback reads only its own shards' earlier periods, built by an earlier
    wave or earlier inside its own run. With ``cross_sectional`` features a slice's features read
    every shard's bars of the period, so a plan that builds bars and features becomes a bars wave
    followed by a features wave.
    """
    pos = {s: i for i, s in enumerate(shard_order)}
    waves = []
    for plan in plans:
        first, last = pos[plan.shard_range[0]], pos[plan.shard_range[1]]
        block = shard_order[first:last + 1]
        n = max(1, min(processes, len(block)))
        cuts = [block[i * len(block) // n:(i + 1) * len(block) // n] for i in range(n)]
        phases = [plan.assets]
        if cross_sectional and VALIDATED_BARS in plan.assets and len(plan.assets) > 1:
            phases = [(VALIDATED_BARS,), tuple(a for a in plan.assets if a != VALIDATED_BARS)]
        for assets in phases:
            waves.append([RunPlan(assets, plan.period_range, (cut[0], cut[-1])) for cut in cuts])
    return waves
