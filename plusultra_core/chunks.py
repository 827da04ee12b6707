"""Bounded chunks of a history run: whole shards at a time, so memory does not grow with the universe.

A single run over many partitions (a full history build: every shard x every period) used to
hold the whole range in memory at once: 2.5M bars became a ~1.2 GB float64 feature block, its
per-partition copies and the window frame (3.6 GB peak at 500 symbols). The history stages now
walk the run's shards in chunks of about `CHUNK_BYTES` each (rows x the stage's bytes per row):
a chunk is whole shards (a partition is never split), in shard order, over all of the run's
periods. Rows are counted from the database's fingerprint table
(`SQLiteMarketDataset.partition_fingerprints`), so chunks are known before anything is read.

Per-symbol features are independent across symbols (every kernel works column by column on the
``[L, S]`` matrices, each symbol's rows starting at row 0), so a chunk's values are the same
bytes as the whole run's. Cross-sectional features, the only ones that compare symbols, get their
own pass over the universe before the chunks, itself chunk by chunk
(`FeaturePipeline.universe_features`: only their columns, then the ``[dates, symbols]`` grid of
what they rank).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from plusultra_core.data.periods import period_keys
from plusultra_core.data.sharding import symbols_by_shard
from plusultra_core.history import PartitionRef, feature_frame, read_universe, stored_upstream

# Bytes of the widest array a stage builds for one chunk (its rows x its `*_ROW_BYTES`). Each
# stage holds a few copies of it while splitting and writing partitions, so 128 MB keeps a chunk
# near half a GB whatever the universe size, and few enough chunks (a dozen feature chunks at
# 500 symbols x 20 years) keep the per-chunk fixed costs small (a scan of the SQLite file for the
# bars, one DuckDB query for the features).
CHUNK_BYTES = 128 * 2**20
# A validated bar: OHLCV, indicators and market-wide series, about 16 float64 columns.
BAR_ROW_BYTES = 16 * 8


def feature_row_bytes(n_features: int) -> int:
    """A feature row (float64) plus the bar it is computed from."""
    return 8 * n_features + BAR_ROW_BYTES


def tensor_row_bytes(n_features: int) -> int:
    """A window-frame row: the features read (float64) and their float32 copy."""
    return 12 * n_features


def shard_rows(symbol_fingerprints: pd.DataFrame, shard_of: Mapping[str, str], period: str,
               periods: Iterable[str]) -> dict[str, int]:
    """``shard -> source rows`` over ``periods``, from `partition_fingerprints` output."""
    fp = symbol_fingerprints[symbol_fingerprints["symbol"].isin(list(shard_of))]
    fp = fp[np.isin(period_keys(fp["period_start"], period), list(periods))]
    return {str(s): int(n) for s, n in fp.groupby(fp["symbol"].map(shard_of))["n_rows"].sum().items()}


def shard_chunks(refs: Iterable[PartitionRef], rows_of_shard: Mapping[str, int],
                 row_bytes: int) -> list[list[PartitionRef]]:
    """``refs`` in chunks of whole shards (in shard order) of at most `CHUNK_BYTES` (``rows x
    row_bytes``) each; a shard larger than that is a chunk of its own. Each chunk keeps the order
    ``refs`` came in."""
    max_rows = CHUNK_BYTES // max(int(row_bytes), 1)
    refs = list(refs)
    chunk_of: dict[str, int] = {}  # shard -> chunk number
    rows, n_chunks = 0, 0
    for shard in sorted({r.shard for r in refs}):
        n = int(rows_of_shard.get(shard, 0))
        if not n_chunks or rows + n > max_rows:
            n_chunks, rows = n_chunks + 1, 0
        chunk_of[shard] = n_chunks - 1
        rows += n
    chunks: list[list[PartitionRef]] = [[] for _ in range(n_chunks)]
    for ref in refs:
        chunks[chunk_of[ref.shard]].append(ref)
    return chunks


def chunk_symbols(chunk: Iterable[PartitionRef], shard_of: Mapping[str, str]) -> list[str]:
    """Sorted symbols of the shards of ``chunk``."""
    by_shard = symbols_by_shard(dict(shard_of))
    return sorted(s for shard in {r.shard for r in chunk} for s in by_shard.get(shard, []))


def validated_chunks(dataset, chunks: list[list[PartitionRef]], shard_of: Mapping[str, str], start, end):
    """``(chunk, validated panel)`` for each chunk, read from ``dataset`` over ``[start, end]``.

    With more than one chunk, every chunk is validated before the first is returned, so a contract
    violation anywhere raises `DataValidationError` before the caller has written anything; each
    chunk is then read again (memory: one chunk at a time, for a second read of the file).
    """
    symbols = [chunk_symbols(chunk, shard_of) for chunk in chunks]
    if len(chunks) > 1:
        for syms in symbols:
            dataset.load_panel(syms, start, end, validate=True)
    for chunk, syms in zip(chunks, symbols):
        yield chunk, dataset.load_panel(syms, start, end, validate=True)


def feature_chunks(pipeline, store, bars_asset: str, refs, upstream, tradable: set[str],
                   with_data: set[PartitionRef] | None, rows_of_shard: Mapping[str, int]):
    """``(chunk, features, inputs)`` for each chunk of ``refs`` (`shard_chunks` by ``rows_of_shard``,
    the rows each shard's features read): `feature_frame` of the chunk over ``upstream``.

    The cross-sectional features are computed once, before the chunks, over every tradable
    symbol's bars in ``upstream`` read chunk by chunk too (`read_universe`: only their columns;
    `FeaturePipeline.universe_features`), and each chunk takes its rows of them. A single chunk
    holding every shard is its own universe: exactly `feature_frame` of ``refs``.
    """
    chunks = shard_chunks(refs, rows_of_shard, feature_row_bytes(len(pipeline.order)))
    universe = None
    if pipeline.cross_sectional:
        stored = stored_upstream(store, bars_asset, upstream, with_data)
        if len(chunks) > 1 or {r.shard for r in stored} - {r.shard for r in refs}:
            parts = shard_chunks(stored, rows_of_shard, feature_row_bytes(len(pipeline.order)))
            universe = pipeline.universe_features(
                lambda: (read_universe(pipeline, store, bars_asset, part, tradable) for part in parts))
    for chunk in chunks:
        yield (chunk, *feature_frame(pipeline, store, bars_asset, chunk, upstream, tradable, with_data, universe))
