"""Features group: the causal feature panel and the float32 window tensors."""


import math

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from plusultra_core.data.periods import PERIODS
from plusultra_core.history import PartitionRef, feature_frame, read_partitions, shard_fingerprints, split_partitions, to_store_frame
from plusultra_pipeline.constants import HISTORY_CODE_VERSION, FEATURE_PANEL, FEATURES_GROUP, VALIDATED_BARS, WINDOW_TENSORS
from plusultra_pipeline.metadata import date_range, table
from plusultra_pipeline.partitions import lookback_mapping, split_key, universe_lookback_mapping
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings

NAN_CHECK = "feature_nan_ratio"
RETURN_COLUMN = "ret_1d"  # the 1-day return feature the window stage turns into targets
FINITE_CHECK = "window_values_finite"
# Fewest trading days a month has (holidays included), to turn a feature lookback in rows into
# history periods conservatively: a 252-row window plus the current row needs two years of
# lookback when the previous year had only 251 sessions.
MIN_BARS_PER_MONTH = 20


def feature_pipeline(settings: PipelineSettings):
    """The configured FeaturePipeline: names and/or tags, minus ``exclude`` (unknown names fail)."""
    from plusultra_core.features import DEFAULT_REGISTRY, FeaturePipeline

    sel = settings.features
    specs = DEFAULT_REGISTRY.select(names=list(sel.names) if sel.names else None,
                                    tags=list(sel.tags) if sel.tags else None)
    if sel.exclude:
        DEFAULT_REGISTRY.select(names=list(sel.exclude))  # unknown excluded names are an error too
    names = [s.name for s in specs if s.name not in set(sel.exclude)]
    return FeaturePipeline(names=names, strict=sel.strict)


def lookback_periods(settings: PipelineSettings) -> int:
    """How many previous periods a partition's features need (e.g. 1 year for a 252-day window)."""
    rows_per_period = PERIODS[settings.history.period][2] * MIN_BARS_PER_MONTH
    return max(1, math.ceil((feature_pipeline(settings).max_lookback + 1) / rows_per_period))


def _refs(context: AssetExecutionContext) -> list[PartitionRef]:
    return [PartitionRef(*split_key(k)) for k in context.partition_keys]


def _read(store, asset_name: str, refs) -> pd.DataFrame:
    """Stored partitions among ``refs`` of ``asset_name`` in one DuckDB query, (timestamp, symbol) index."""
    return read_partitions(store, asset_name, [r for r in refs if store.exists(asset_name, r.as_store_key())])


def bars_mapping(settings: PipelineSettings):
    """How `feature_panel` reads `validated_bars`: its periods plus the lookback, over its own shards
    or, when cross-sectional features are selected, over every shard (they rank across the universe)."""
    lookback = lookback_periods(settings)
    if feature_pipeline(settings).cross_sectional:
        return universe_lookback_mapping(lookback)
    return lookback_mapping(lookback)


def nan_ratios_after_warmup(features: pd.DataFrame) -> pd.Series:
    """Share of non-finite values per feature, not counting each symbol's leading warm-up rows."""
    values = features.to_numpy(dtype=np.float64)
    finite = pd.DataFrame(np.isfinite(values), index=features.index, columns=features.columns)
    started = finite.groupby(level="symbol").cummax()  # True from a symbol's first finite value on
    counted = started.sum()
    missing = (started & ~finite).sum()
    # a feature that never produced a value (e.g. skipped for a missing input) counts as all missing
    return (missing / counted.where(counted > 0)).fillna(1.0)


def build_feature_assets(settings: PipelineSettings, partitions_def):
    period = settings.history.period

    @asset(
        name=FEATURE_PANEL,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        ins={VALIDATED_BARS: AssetIn(partition_mapping=bars_mapping(settings), dagster_type=Nothing)},
        group_name=FEATURES_GROUP,
        code_version=HISTORY_CODE_VERSION,
        kinds={"numpy", "parquet"},
        check_specs=[AssetCheckSpec(NAN_CHECK, asset=FEATURE_PANEL,
                                    description="Share of NaN/inf per feature after each symbol's warm-up "
                                                f"stays below features.max_nan_ratio ({settings.features.max_nan_ratio}).")],
    )
    def feature_panel(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Causal features (FeatureRegistry) per symbol × period with the previous periods as lookback; cross-sectional ranks across every tradable symbol."""
        refs = _refs(context)
        upstream = [PartitionRef(*split_key(k)) for k in context.asset_partition_keys_for_input(VALIDATED_BARS)]
        store_ = store.store()
        dataset = market_db.dataset()
        shard_of = market_db.shard_map(dataset)
        with_data = set(shard_fingerprints(dataset.partition_fingerprints(period), shard_of, period))
        pipeline = feature_pipeline(settings)
        columns = [spec.name for spec in pipeline.selected]
        features, read = feature_frame(pipeline, store_, VALIDATED_BARS, refs, upstream, set(shard_of), with_data)
        # same columns in every partition, whatever this range's inputs allowed to compute
        features = features.reindex(columns=columns)
        parts = split_partitions(features, shard_of, period, keep=set(refs))
        for ref in refs:
            frame = parts.get(ref, features.iloc[:0])
            store_.write(FEATURE_PANEL, ref.as_store_key(), to_store_frame(frame),
                         metadata={"features": columns, "rows": len(frame)})
        own = pd.concat(list(parts.values())) if parts else features.iloc[:0]
        ratios = nan_ratios_after_warmup(own) if len(own) else pd.Series(dtype=float)
        worst = ratios[ratios > settings.features.max_nan_ratio]
        yield MaterializeResult(metadata={
            "rows": len(own),
            "partitions": len(refs),
            "lookback_partitions_read": read.partitions,
            "universe_partitions_read": read.universe_partitions,
            "universe_symbols": read.universe_symbols,
            "date_range": date_range(own),
            "features": len(columns),
            "skipped_features": MetadataValue.json([{"feature": n, "missing": m} for n, m in pipeline.skipped.items()]),
            "feature_table": MetadataValue.md(pipeline.describe()),
            "store_path": MetadataValue.path(f"{store_.root}/{FEATURE_PANEL}"),
        })
        yield AssetCheckResult(check_name=NAN_CHECK, passed=worst.empty, severity=AssetCheckSeverity.WARN,
                               metadata={"max_ratio": float(ratios.max()) if len(ratios) else 0.0,
                                         "nan_ratios": table(ratios.rename("nan_ratio").rename_axis("feature").reset_index())})

    @asset(
        name=WINDOW_TENSORS,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        ins={FEATURE_PANEL: AssetIn(dagster_type=Nothing)},
        group_name=FEATURES_GROUP,
        code_version=HISTORY_CODE_VERSION,
        kinds={"numpy", "parquet"},
        check_specs=[AssetCheckSpec(FINITE_CHECK, asset=WINDOW_TENSORS, blocking=True,
                                    description="Every stored float32 input is finite (non-finite inputs are zeroed and their rows "
                                                "marked invalid) and the return is finite on every valid row.")],
    )
    def window_tensors(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Float32 feature rows + 1-day returns + validity mask per symbol × period, ready for zero-copy windowing."""
        from plusultra_core.windows import build_window_frame

        refs = _refs(context)
        store_ = store.store()
        features = _read(store_, FEATURE_PANEL, refs)
        names = [c for c in features.columns]
        frame = build_window_frame(features, names)
        indexed = frame.set_index(["timestamp", "symbol"])
        parts = split_partitions(indexed, market_db.shard_map(), period, keep=set(refs))
        for ref in refs:
            part = parts.get(ref, indexed.iloc[:0])
            store_.write(WINDOW_TENSORS, ref.as_store_key(), part.reset_index(),
                         metadata={"features": names, "rows": len(part)})
        inputs = [n for n in names if n != RETURN_COLUMN]
        values = frame[inputs].to_numpy(dtype=np.float32)
        # inputs are always finite (non-finite -> 0, row invalid); the return is finite wherever valid
        finite = bool(np.isfinite(values).all()) and bool(np.isfinite(frame.loc[frame["valid"], RETURN_COLUMN]).all())
        valid_ratio = float(frame["valid"].mean()) if len(frame) else 0.0
        yield MaterializeResult(metadata={
            "rows": len(frame),
            "partitions": len(refs),
            "features": len(names),
            "valid_ratio": valid_ratio,
            "array_bytes": int(values.nbytes),
            "date_range": date_range(indexed),
            "store_path": MetadataValue.path(f"{store_.root}/{WINDOW_TENSORS}"),
        })
        yield AssetCheckResult(check_name=FINITE_CHECK, passed=finite,
                               metadata={"valid_ratio": valid_ratio, "rows": len(frame)})

    return feature_panel, window_tensors

