"""Features group: the causal feature panel and the float32 window tensors."""


import math

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MetadataValue,
)

from plusultra_core.data.periods import PERIODS
from plusultra_core.chunks import feature_chunks, shard_chunks, shard_rows, tensor_row_bytes
from plusultra_core.history import PartitionRef, read_partitions, shard_fingerprints, split_partitions, to_store_frame
from plusultra_pipeline.constants import FEATURE_PANEL, FEATURES_GROUP, VALIDATED_BARS, WINDOW_TENSORS
from plusultra_pipeline.assets.history_stage import HistoryStage, RunSource
from plusultra_pipeline.events import combined_version, stored_versions, event_pointer, frame_version, partition_check, partition_materialization
from plusultra_pipeline.metadata import date_range
from plusultra_pipeline.partitions import lookback_mapping, split_key, universe_lookback_mapping
from plusultra_pipeline.resources import PartitionStore
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
    # None means the default (every feature); an explicit empty list is an error in the registry
    specs = DEFAULT_REGISTRY.select(names=list(sel.names) if sel.names is not None else None,
                                    tags=list(sel.tags) if sel.tags is not None else None)
    if sel.exclude:
        DEFAULT_REGISTRY.select(names=list(sel.exclude))  # unknown excluded names are an error too
    names = [s.name for s in specs if s.name not in set(sel.exclude)]
    return FeaturePipeline(names=names, strict=sel.strict)


def lookback_periods(settings: PipelineSettings) -> int:
    """How many previous periods a partition's features need (e.g. 1 year for a 252-day window)."""
    rows_per_period = PERIODS[settings.history.period][2] * MIN_BARS_PER_MONTH
    return max(1, math.ceil((feature_pipeline(settings).max_lookback + 1) / rows_per_period))


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


def _upstream_version(store, asset_name: str, refs) -> str:
    """Combined data version of the upstream partitions a range read (from the store's sidecars)."""
    return combined_version(stored_versions(store, asset_name, [r.as_store_key() for r in refs]))


def _panel_events(store, key, ref: PartitionRef, part: pd.DataFrame, columns: list[str], limit: float,
                  code_version: str, inputs: dict, pointer: int):
    """Write one `feature_panel` partition; its materialization and NaN-check evaluation."""
    frame = to_store_frame(part)
    version = frame_version(frame)
    stored = store.write(FEATURE_PANEL, ref.as_store_key(), frame,
                         metadata={"features": columns, "rows": len(frame), "data_version": version})
    ratios = nan_ratios_after_warmup(part) if len(part) else pd.Series(dtype=float)
    worst = ratios[ratios > limit]
    yield partition_materialization(FEATURE_PANEL, key, version, code_version, inputs, pointer, {
        "rows": len(frame), "features": len(columns), "date_range": date_range(part),
        "symbols": MetadataValue.text(", ".join(sorted(set(part.index.get_level_values("symbol"))))),
        "max_nan_ratio": round(float(ratios.max()), 6) if len(ratios) else 0.0,
        "path": MetadataValue.path(str(stored.path))})
    yield partition_check(FEATURE_PANEL, NAN_CHECK, key, worst.empty, {
        "max_ratio": round(float(ratios.max()), 6) if len(ratios) else 0.0,
        "over_limit": MetadataValue.text(", ".join(f"{n}={r:.3f}" for n, r in worst.items()) or "none")},
        severity=AssetCheckSeverity.WARN)


def _tensor_events(store, key, ref: PartitionRef, indexed: pd.DataFrame, names: list[str], code_version: str,
                   pointer: int):
    """Write one `window_tensors` partition; its materialization and finiteness check. Returns
    whether every value is finite."""
    part = indexed.reset_index()
    version = frame_version(part)
    stored = store.write(WINDOW_TENSORS, ref.as_store_key(), part,
                         metadata={"features": names, "rows": len(part), "data_version": version})
    inputs = [n for n in names if n != RETURN_COLUMN]
    values = part[inputs].to_numpy(dtype=np.float32)
    valid = part["valid"].to_numpy(bool) if len(part) else np.zeros(0, bool)
    # inputs are always finite (non-finite -> 0, row invalid); the return is finite wherever valid
    finite = bool(np.isfinite(values).all()) and bool(np.isfinite(part.loc[valid, RETURN_COLUMN]).all())
    valid_ratio = round(float(valid.mean()), 6) if len(part) else 0.0
    yield partition_materialization(WINDOW_TENSORS, key, version, code_version,
                                    {FEATURE_PANEL: _upstream_version(store, FEATURE_PANEL, [ref])}, pointer, {
        "rows": len(part), "features": len(names), "valid_ratio": valid_ratio,
        "array_bytes": int(values.nbytes), "date_range": date_range(indexed),
        "path": MetadataValue.path(str(stored.path))})
    yield partition_check(WINDOW_TENSORS, FINITE_CHECK, key, finite, {"valid_ratio": valid_ratio, "rows": len(part)})
    return finite


def build_feature_assets(settings: PipelineSettings, partitions_def, code_version: str):
    period = settings.history.period

    panel_spec = AssetSpec(FEATURE_PANEL, partitions_def=partitions_def, group_name=FEATURES_GROUP,
                           deps=[AssetDep(VALIDATED_BARS, partition_mapping=bars_mapping(settings))],
                           code_version=code_version, kinds={"numpy", "parquet"},
                           description="Causal features (FeatureRegistry) per symbol × period with the previous "
                                       "periods as lookback; cross-sectional ranks across every tradable symbol.")
    panel_checks = [AssetCheckSpec(NAN_CHECK, asset=FEATURE_PANEL, partitions_def=partitions_def,
                                   description="Share of NaN/inf per feature after each symbol's warm-up "
                                               f"stays below features.max_nan_ratio ({settings.features.max_nan_ratio}).")]

    def feature_panel(context: AssetExecutionContext, source: RunSource, store: PartitionStore):
        keys = list(context.partition_keys)
        refs = [PartitionRef(*split_key(k)) for k in keys]
        key_of, pointer, store_ = dict(zip(refs, keys)), event_pointer(context.instance), store.store()
        upstream = [PartitionRef(*split_key(k)) for k in context.asset_partition_keys_for_input(VALIDATED_BARS)]
        shard_of = source.shard_of
        with_data = set(shard_fingerprints(source.fingerprints, shard_of, period))
        pipeline = feature_pipeline(settings)
        columns = [spec.name for spec in pipeline.selected]
        inputs = {VALIDATED_BARS: _upstream_version(store_, VALIDATED_BARS, [r for r in upstream if r in with_data])}
        rows = shard_rows(source.fingerprints, shard_of, period, {r.period for r in upstream})
        n_chunks, own_read = 0, 0
        for chunk, features, read in feature_chunks(pipeline, store_, VALIDATED_BARS, refs, upstream,
                                                    set(shard_of), with_data, rows):
            features = features.reindex(columns=columns)  # same columns whatever the inputs allowed
            parts = split_partitions(features, shard_of, period, keep=set(chunk))
            for ref in chunk:
                yield from _panel_events(store_, key_of[ref], ref, parts.get(ref, features.iloc[:0]), columns,
                                         settings.features.max_nan_ratio, code_version, inputs, pointer)
            n_chunks, own_read = n_chunks + 1, own_read + read.partitions
        context.log.info(f"feature_panel: {len(keys)} partitions in {n_chunks} chunk(s), {len(columns)} features; read "
                         f"{own_read} lookback partitions and {read.universe_partitions} universe partitions "
                         f"({read.universe_symbols} symbols); skipped features: {dict(pipeline.skipped) or 'none'}")

    tensors_spec = AssetSpec(WINDOW_TENSORS, partitions_def=partitions_def, group_name=FEATURES_GROUP,
                             deps=[FEATURE_PANEL], code_version=code_version, kinds={"numpy", "parquet"},
                             description="Float32 feature rows + 1-day returns + validity mask per symbol × period, "
                                         "ready for zero-copy windowing.")
    tensors_checks = [AssetCheckSpec(FINITE_CHECK, asset=WINDOW_TENSORS, blocking=True, partitions_def=partitions_def,
                                     description="Every stored float32 input is finite (non-finite inputs are zeroed and "
                                                 "their rows marked invalid) and the return is finite on every valid row.")]

    def window_tensors(context: AssetExecutionContext, source: RunSource, store: PartitionStore):
        from plusultra_core.windows import build_window_frame

        keys = list(context.partition_keys)
        refs = [PartitionRef(*split_key(k)) for k in keys]
        key_of, pointer, store_ = dict(zip(refs, keys)), event_pointer(context.instance), store.store()
        rows = shard_rows(source.fingerprints, source.shard_of, period, {r.period for r in refs})
        row_bytes = tensor_row_bytes(len(feature_pipeline(settings).selected))
        failed = []
        for chunk in shard_chunks(refs, rows, row_bytes):
            features = _read(store_, FEATURE_PANEL, chunk)
            names = list(features.columns)
            indexed = build_window_frame(features, names).set_index(["timestamp", "symbol"])
            parts = split_partitions(indexed, source.shard_of, period, keep=set(chunk))
            for ref in chunk:
                finite = yield from _tensor_events(store_, key_of[ref], ref, parts.get(ref, indexed.iloc[:0]), names,
                                                   code_version, pointer)
                failed += [] if finite else [key_of[ref]]
        if failed:  # blocking: nothing downstream may train on non-finite inputs
            raise Failure(description=f"window_tensors: non-finite values in {len(failed)} partition(s): {failed[:5]}")

    return (HistoryStage(panel_spec, panel_checks, feature_panel),
            HistoryStage(tensors_spec, tensors_checks, window_tensors))

