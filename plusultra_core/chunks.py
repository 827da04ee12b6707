"""Bounded chunks of a history run: whole shards at a time, so memory does not grow with the universe.

A single run over many partitions (a full history build: every shard × every period) used to
hold the whole range in memory at once: 2.5M bars became a ~1.2 GB float64 feature block, its
per-partition copies and the window frame (8.5 GB peak at 500 symbols). The history stages now
walk the run's shards in chunks of about `CHUNK_ROWS` bars each: a chunk is whole shards (a
partition is never split), in shard order, over all of the run's periods. Rows are counted from
the database's fingerprint table (`SQLiteMarketDataset.partition_fingerprints`), so chunks are
known before anything is read.

Per-symbol features are independent across symbols (every kernel works column by column on the
``[L, S]`` matrices, each symbol's rows starting at row 0), so a chunk's values are the same
bytes as the whole run's. Cross-sectional features, the only ones that compare symbols, get their
own pass over the universe (`FeaturePipeline.universe_features`, reading only their columns)
before the chunks.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from plusultra_core.data.periods import period_keys
from plusultra_core.data.sharding import symbols_by_shard
from plusultra_core.history import PartitionRef, feature_frame, read_universe, stored_upstream

# Bars per chunk. The widest per-row stage is the feature block (~60 float64 columns, ~0.5 KB a
# bar, plus the per-partition copies the store writes); 250k bars keep a chunk's arrays near a
# few hundred MB at any universe size, while few enough chunks (10 at 500 symbols x 20 years)
# keep the per-chunk fixed costs (a scan of the SQLite file, one DuckDB query) small.
CHUNK_ROWS = 250_000


def shard_rows(symbol_fingerprints: pd.DataFrame, shard_of: Mapping[str, str], period: str,
               periods: Iterable[str]) -> dict[str, int]:
    """``shard -> source rows`` over ``periods``, from `partition_fingerprints` output."""
    fp = symbol_fingerprints[symbol_fingerprints["symbol"].isin(list(shard_of))]
    fp = fp[np.isin(period_keys(fp["period_start"], period), list(periods))]
    return {str(s): int(n) for s, n in fp.groupby(fp["symbol"].map(shard_of))["n_rows"].sum().items()}


def shard_chunks(refs: Iterable[PartitionRef], rows_of_shard: Mapping[str, int],
                 max_rows: int | None = None) -> list[list[PartitionRef]]:
    """``refs`` in chunks of whole shards (in shard order) of at most ``max_rows`` (default
    `CHUNK_ROWS`) rows each; a shard larger than that is a chunk of its own. Each chunk keeps the
    order ``refs`` came in."""
    max_rows = CHUNK_ROWS if max_rows is None else max_rows
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

    With more than one chunk, the cross-sectional features are computed once, before the chunks,
    over every tradable symbol's bars in ``upstream`` (`read_universe`: only their columns), and
    each chunk takes its rows of them; a single chunk is exactly `feature_frame` of ``refs``.
    """
    chunks = shard_chunks(refs, rows_of_shard)
    universe = None
    if pipeline.cross_sectional and len(chunks) > 1:
        stored = stored_upstream(store, bars_asset, upstream, with_data)
        universe = pipeline.universe_features(read_universe(pipeline, store, bars_asset, stored, tradable))
    for chunk in chunks:
        yield (chunk, *feature_frame(pipeline, store, bars_asset, chunk, upstream, tradable, with_data, universe))
