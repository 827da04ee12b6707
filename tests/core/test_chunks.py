"""`plusultra_core.chunks`: whole shards per chunk, within the row budget, order kept."""

from __future__ import annotations

import pandas as pd

from plusultra_core import chunks
from plusultra_core.chunks import chunk_symbols, shard_chunks, shard_rows
from plusultra_core.history import PartitionRef


def _refs(shards, periods):
    return [PartitionRef(s, p) for p in periods for s in shards]  # period-major, as Dagster orders keys


def test_chunks_are_whole_shards_within_the_budget_in_shard_order():
    refs = _refs(["a", "b", "c", "d", "e"], ["2000", "2001"])
    rows = {"a": 40, "b": 50, "c": 120, "d": 10, "e": 60}
    got = shard_chunks(refs, rows, row_bytes=chunks.CHUNK_BYTES // 100)  # 100 rows a chunk
    # a+b fit; c exceeds the budget alone (a chunk of its own); d+e fit
    assert [sorted({r.shard for r in c}) for c in got] == [["a", "b"], ["c"], ["d", "e"]]
    assert sorted((r for c in got for r in c), key=str) == sorted(refs, key=str)
    assert got[0] == [r for r in refs if r.shard in ("a", "b")]  # the order refs came in
    assert shard_chunks(refs, rows, row_bytes=1) == [refs]
    assert shard_chunks([], rows, row_bytes=1) == []


def test_shard_rows_and_symbols_come_from_the_fingerprints():
    shard_of = {"X": "s1", "Y": "s1", "Z": "s2"}
    fp = pd.DataFrame({"symbol": ["X", "X", "Y", "Z", "GONE"],
                       "period_start": pd.to_datetime(["2000-01-01", "2001-01-01", "2001-01-01", "2001-01-01",
                                                       "2001-01-01"]),
                       "n_rows": [250, 251, 100, 7, 9]})
    assert shard_rows(fp, shard_of, "year", ["2001"]) == {"s1": 351, "s2": 7}
    assert shard_rows(fp, shard_of, "year", ["2000", "2001"]) == {"s1": 601, "s2": 7}
    assert chunk_symbols([PartitionRef("s1", "2001")], shard_of) == ["X", "Y"]
