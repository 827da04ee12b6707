"""Ingest group: the SQLite file as an observed source, and the validated extract.

`market_db` is partitioned like the history (shard × period): its data version per partition is
the fingerprint of that partition's source rows, so one changed symbol-year marks exactly its
`validated_bars` partition stale. An observation records only partitions whose fingerprint
changed (an unchanged database adds no event and marks nothing stale).
"""

import pandas as pd
from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DagsterEventType,
    DataVersionsByPartition,
    Failure,
    MetadataValue,
    observable_source_asset,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from plusultra_core.errors import DataValidationError
from plusultra_core.chunks import BAR_ROW_BYTES, chunk_symbols, shard_chunks, shard_rows, validated_chunks
from plusultra_core.history import PartitionRef, range_bounds, shard_fingerprints, split_partitions, to_store_frame
from plusultra_pipeline.constants import INGEST_GROUP, MARKET_DB, VALIDATED_BARS
from plusultra_pipeline.assets.history_stage import HistoryStage, RunSource
from plusultra_pipeline.events import event_pointer, frame_version, partition_check, partition_materialization
from plusultra_pipeline.metadata import date_range
from plusultra_pipeline.partitions import history_key, split_key
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings

CONTRACT_CHECK = "pandera_contract"
ROWCOUNT_CHECK = "row_count_matches_source"


def source_versions(market_db: MarketDatabase, period: str) -> dict[str, str]:
    """``history key -> fingerprint`` of every shard × period with rows in the database."""
    dataset = market_db.dataset()
    prints = shard_fingerprints(dataset.partition_fingerprints(period), market_db.shard_map(dataset), period)
    return {history_key(r.shard, r.period): str(fp) for r, fp in prints.items()}


def observed_versions(instance) -> dict[str, str]:
    """The latest observed data version of every `market_db` partition."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        AssetKey(MARKET_DB), DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
    return {key: t[DATA_VERSION_TAG] for key, t in tags.items() if DATA_VERSION_TAG in t}


def changed_versions(instance, current: dict[str, str]) -> dict[str, str]:
    """The partitions of ``current`` whose version differs from the latest observation."""
    seen = observed_versions(instance)
    return {k: v for k, v in current.items() if seen.get(k) != v}


def build_ingest_assets(settings: PipelineSettings, partitions_def, code_version: str):
    period = settings.history.period

    @observable_source_asset(name=MARKET_DB, group_name=INGEST_GROUP, partitions_def=partitions_def,
                             description="The user's SQLite market database (read-only); per shard × period, "
                                         "the fingerprint of its rows. Observed before every CLI run and by "
                                         "`market_db_sensor`; only changed partitions are recorded.")
    def market_db(context, market_db: MarketDatabase) -> DataVersionsByPartition:
        changed = changed_versions(context.instance, source_versions(market_db, period))
        context.log.info(f"{len(changed)} market_db partition(s) new or changed")
        return DataVersionsByPartition(changed)

    spec = AssetSpec(VALIDATED_BARS, partitions_def=partitions_def, deps=[market_db], group_name=INGEST_GROUP,
                     code_version=code_version, kinds={"pandera", "parquet"},
                     description="Pandera-validated extract (series ⋈ assets ⋈ indicators ⋈ market-wide "
                                 "series) per symbol × period.")
    checks = [
        AssetCheckSpec(CONTRACT_CHECK, asset=VALIDATED_BARS, blocking=True, partitions_def=partitions_def,
                       description="pandera schemas of series/indicators/assets/benchmarks: nulls, duplicate keys, "
                                   "unsorted or zoned timestamps, OHLC consistency, prices, volume, unknown symbols."),
        AssetCheckSpec(ROWCOUNT_CHECK, asset=VALIDATED_BARS, partitions_def=partitions_def,
                       description="Rows written per partition equal the rows in the SQLite file."),
    ]

    def validated_bars(context: AssetExecutionContext, source: RunSource, store: PartitionStore):
        """One event and two check evaluations per partition of the run's range, chunk by chunk."""
        from plusultra_core.data.validation import validation_summary

        keys = list(context.partition_keys)
        refs = [PartitionRef(*split_key(k)) for k in keys]
        key_of, pointer, store_ = dict(zip(refs, keys)), event_pointer(context.instance), store.store()
        shard_of, symbol_prints = source.shard_of, source.fingerprints
        periods = sorted({r.period for r in refs})
        prints = shard_fingerprints(symbol_prints, shard_of, period)
        source_rows = _source_rows(symbol_prints, shard_of, period)
        chunks = shard_chunks(refs, shard_rows(symbol_prints, shard_of, period, periods), BAR_ROW_BYTES)
        done, rows = set(), 0
        try:
            check_known_symbols(symbol_prints, source.dataset.assets(), source.dataset.path)
            for name in source.dataset.benchmarks():  # small; the evaluation reads them later
                source.dataset.benchmark_returns(name)
            for chunk, panel in validated_chunks(source.dataset, chunks, shard_of, *range_bounds(periods, period)):
                parts, rows = split_partitions(panel, shard_of, period, keep=set(chunk)), rows + len(panel)
                for ref in chunk:
                    part = parts.get(ref, panel.iloc[:0])
                    yield from _bars_events(store_, key_of[ref], ref, part, validation_summary(part),
                                            prints.get(ref), int(source_rows.get(ref, 0)), code_version, pointer)
                    done.add(ref)
        except DataValidationError as exc:
            # The contract fails for the whole range (every chunk is checked before the first is
            # written) and nothing is written: the store keeps the previous partitions.
            detail = {"table": exc.table, "column": str(exc.column), "check": str(exc.check),
                      "error": MetadataValue.md(f"```\n{exc}\n```")}
            for ref in refs:
                if ref not in done:
                    yield partition_check(VALIDATED_BARS, CONTRACT_CHECK, key_of[ref], False, detail)
            raise Failure(description=f"validation failed: {exc}") from exc
        context.log.info(f"validated_bars: {len(keys)} partitions in {len(chunks)} chunk(s), {rows} rows of "
                         f"{len(chunk_symbols(refs, shard_of))} symbols")

    return market_db, HistoryStage(spec, checks, validated_bars)


def _bars_events(store, key, ref: PartitionRef, part: pd.DataFrame, summary: dict, fingerprint, expected: int,
                 code_version: str, pointer: int):
    """Write one `validated_bars` partition; its materialization and two check evaluations."""
    frame = to_store_frame(part)
    version = frame_version(frame)
    stored = store.write(VALIDATED_BARS, ref.as_store_key(), frame,
                         metadata={"fingerprint": fingerprint, "data_version": version,
                                   "symbols": sorted(summary), "validation": summary})
    rows = len(frame)
    bad = {s: v["status"] for s, v in summary.items() if v["status"] != "ok"}
    yield partition_materialization(VALIDATED_BARS, key, version, code_version, {MARKET_DB: str(fingerprint)}, pointer, {
        "rows": rows, "source_rows": expected, "symbols": MetadataValue.text(", ".join(sorted(summary))),
        "date_range": date_range(part),
        "validation": MetadataValue.text("ok" if not bad else "; ".join(f"{s}: {v}" for s, v in bad.items())),
        "path": MetadataValue.path(str(stored.path))})
    yield partition_check(VALIDATED_BARS, CONTRACT_CHECK, key, True, {"rows_validated": rows})
    yield partition_check(VALIDATED_BARS, ROWCOUNT_CHECK, key, rows == expected,
                          {"rows": rows, "source_rows": expected}, severity=AssetCheckSeverity.ERROR)


def check_known_symbols(symbol_prints: pd.DataFrame, assets: pd.DataFrame, where) -> None:
    """Rows of symbols missing from `assets` belong to no partition, so a partition-scoped read never
    sees them: check the whole file here (from the fingerprint query it runs anyway)."""
    from plusultra_core.data.contract import ASSETS, SERIES

    orphans = sorted(set(symbol_prints["symbol"]) - set(assets["symbol"]))
    if orphans:
        raise DataValidationError(
            f"{where}: table '{SERIES}', column 'symbol', check 'known_symbol': "
            f"{len(orphans)} symbol(s) not in '{ASSETS}': {', '.join(map(str, orphans[:10]))}",
            table=SERIES, column="symbol", check="known_symbol",
            failure_cases=pd.DataFrame({"symbol": orphans[:5]}))


def _source_rows(fp: pd.DataFrame, shard_of: dict[str, str], period: str) -> dict[PartitionRef, int]:
    """``series`` rows per (shard, period) in the SQLite file, from the fingerprint frame."""
    from plusultra_core.data.periods import period_keys

    fp = fp[fp["symbol"].isin(shard_of)]
    keys = zip(fp["symbol"].map(shard_of), period_keys(fp["period_start"], period))
    out: dict[PartitionRef, int] = {}
    for (shard, per), n in zip(keys, fp["n_rows"].to_numpy()):
        ref = PartitionRef(str(shard), str(per))
        out[ref] = out.get(ref, 0) + int(n)
    return out
