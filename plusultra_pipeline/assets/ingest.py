"""Ingest group: the SQLite file as an observable source, and the validated extract."""


import hashlib

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    observable_source_asset,
)

from plusultra_core.errors import DataValidationError
from plusultra_core.history import PartitionRef, range_bounds, shard_fingerprints, split_partitions, to_store_frame
from plusultra_pipeline.constants import HISTORY_CODE_VERSION, INGEST_GROUP, VALIDATED_BARS
from plusultra_pipeline.incremental import logic_version
from plusultra_pipeline.metadata import date_range, table
from plusultra_pipeline.partitions import split_key
from plusultra_pipeline.resources import MarketDatabase, PartitionStore
from plusultra_pipeline.settings import PipelineSettings

CONTRACT_CHECK = "pandera_contract"
ROWCOUNT_CHECK = "row_count_matches_source"


def database_version(market_db: MarketDatabase, period: str) -> tuple[str, dict]:
    """Content hash of the database (all shard × period fingerprints) and its per-partition map."""
    dataset = market_db.dataset()
    shard_of = market_db.shard_map(dataset)
    prints = shard_fingerprints(dataset.partition_fingerprints(period), shard_of, period)
    blob = "|".join(f"{r.shard}/{r.period}={fp}" for r, fp in sorted(prints.items(), key=lambda kv: (kv[0].shard, kv[0].period)))
    return hashlib.sha256(blob.encode()).hexdigest()[:16], prints


def build_ingest_assets(settings: PipelineSettings, partitions_def, lookback_periods: int):
    period = settings.history.period
    logic = logic_version(settings, lookback_periods)

    @observable_source_asset(name="market_db", group_name=INGEST_GROUP,
                             description="The user's SQLite market database (read-only); its data "
                                         "version changes when the tables' content changes.")
    def market_db(market_db: MarketDatabase) -> DataVersion:
        version, _ = database_version(market_db, period)
        return DataVersion(version)

    @asset(
        name=VALIDATED_BARS,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[market_db],
        group_name=INGEST_GROUP,
        code_version=HISTORY_CODE_VERSION,
        kinds={"pandera", "parquet"},
        check_specs=[
            AssetCheckSpec(CONTRACT_CHECK, asset=VALIDATED_BARS, blocking=True,
                           description="pandera schemas of series/indicators/assets: nulls, duplicate keys, "
                                       "unsorted timestamps, OHLC consistency, prices, volume, unknown symbols."),
            AssetCheckSpec(ROWCOUNT_CHECK, asset=VALIDATED_BARS,
                           description="Rows written per partition equal the rows in the SQLite file."),
        ],
    )
    def validated_bars(context: AssetExecutionContext, market_db: MarketDatabase, store: PartitionStore):
        """Pandera-validated extract (series ⋈ assets ⋈ indicators ⋈ market-wide series) per symbol × period."""
        refs = [PartitionRef(*split_key(k)) for k in context.partition_keys]
        dataset = market_db.dataset()
        shard_of = market_db.shard_map(dataset)
        wanted_shards = {r.shard for r in refs}
        symbols = sorted(s for s, shard in shard_of.items() if shard in wanted_shards)
        start, end = range_bounds(sorted({r.period for r in refs}), period)
        symbol_prints = dataset.partition_fingerprints(period)
        try:
            check_known_symbols(symbol_prints, dataset.assets(), dataset.path)
            panel = dataset.load_panel(symbols, start, end, validate=True)
        except DataValidationError as exc:
            # Blocking check fails and nothing is written: the store keeps the previous partitions.
            yield AssetCheckResult(check_name=CONTRACT_CHECK, passed=False,
                                   metadata={"table": exc.table, "column": str(exc.column),
                                             "check": str(exc.check), "error": MetadataValue.md(f"```\n{exc}\n```")})
            raise Failure(description=f"validation failed: {exc}") from exc
        parts = split_partitions(panel, shard_of, period, keep=set(refs))
        prints = shard_fingerprints(symbol_prints, shard_of, period)
        source_rows = _source_rows(symbol_prints, shard_of, period)
        from plusultra_core.data.validation import validation_summary

        store_ = store.store()
        rows = []
        for ref in refs:
            frame = parts.get(ref, panel.iloc[:0])
            summary = validation_summary(frame) if len(frame) else {}
            stored = store_.write(VALIDATED_BARS, ref.as_store_key(), to_store_frame(frame),
                                  metadata={"fingerprint": prints.get(ref), "logic_version": logic,
                                            "symbols": sorted(summary),
                                            "validation": summary})
            rows.append({"shard": ref.shard, "period": ref.period, "rows": len(frame),
                         "source_rows": int(source_rows.get(ref, 0)),
                         "symbols": ",".join(sorted(summary)), "date_range": date_range(frame),
                         "status": "ok", "path": str(stored.path)})
        summary_frame = pd.DataFrame(rows)
        mismatched = summary_frame[summary_frame["rows"] != summary_frame["source_rows"]]
        yield MaterializeResult(metadata={
            "rows": int(summary_frame["rows"].sum()),
            "partitions": len(refs),
            "symbols": MetadataValue.text(", ".join(symbols)),
            "date_range": date_range(panel),
            "partition_summary": table(summary_frame),
            "store_path": MetadataValue.path(str(store_.root) + f"/{VALIDATED_BARS}"),
        })
        yield AssetCheckResult(check_name=CONTRACT_CHECK, passed=True,
                               metadata={"rows_validated": len(panel), "symbols": len(symbols)})
        yield AssetCheckResult(check_name=ROWCOUNT_CHECK, passed=mismatched.empty,
                               severity=AssetCheckSeverity.ERROR,
                               metadata={"mismatched_partitions": len(mismatched),
                                         "detail": table(mismatched) if len(mismatched) else "none"})

    return market_db, validated_bars


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
