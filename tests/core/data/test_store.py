"""ParquetStore: atomic writes, one-query reads across partitions, metadata, bad keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from plusultra_core.atomic import TEMP_SUFFIX, remove_stale_temps
from plusultra_core.data.store import DATA_FILE, META_FILE, ParquetStore
from plusultra_core.errors import PartitionKeyError


def _frame(symbol: str, year: int, n: int = 5, scale: float = 1.0) -> pd.DataFrame:
    ts = pd.date_range(f"{year}-01-01", periods=n, freq="B").as_unit("ns")
    return pd.DataFrame({
        "timestamp": ts,
        "symbol": symbol,
        "close": np.arange(n, dtype=np.float64) * scale + year,
        "volume": np.arange(n, dtype=np.float64),
    })


class CrashingStore(ParquetStore):
    """Writes the temp file completely, then dies before it is renamed into place."""

    def _write_table(self, table, path):
        super()._write_table(table, path)
        assert path.is_file()
        raise RuntimeError("simulated crash after temp file written")


def test_write_read_roundtrip_and_layout(tmp_path):
    store = ParquetStore(tmp_path)
    df = _frame("AAA", 2020)
    stored = store.write("bars", {"symbol": "AAA", "date": "2020"}, df, metadata={"n_symbols": 1})
    # Dims are laid out in sorted order whatever the dict order.
    assert stored.path == tmp_path / "bars" / "date=2020" / "symbol=AAA" / DATA_FILE
    assert stored.rows == 5 and stored.bytes == stored.path.stat().st_size
    assert store.exists("bars", {"date": "2020", "symbol": "AAA"})
    back = store.read("bars")
    assert list(back.columns) == ["timestamp", "close", "volume", "date", "symbol"]
    assert (back["symbol"] == "AAA").all() and (back["date"] == "2020").all()  # restored from the path, as str
    np.testing.assert_array_equal(back["close"].to_numpy(), df["close"].to_numpy())
    assert back["timestamp"].dtype == "datetime64[ns]"
    meta = store.read_metadata("bars", {"symbol": "AAA", "date": "2020"})
    assert meta["rows"] == 5 and meta["metadata"] == {"n_symbols": 1}
    assert meta["partition"] == {"date": "2020", "symbol": "AAA"}


def test_reads_across_partitions_in_one_query_with_bound_params(tmp_path):
    store = ParquetStore(tmp_path)
    for sym in ("AAA", "BBB", "CCC"):
        for year in (2019, 2020):
            store.write("bars", {"symbol": sym, "date": str(year)}, _frame(sym, year).drop(columns="symbol"))
    assert len(store.list_partitions("bars")) == 6
    parts = [{"symbol": "AAA", "date": "2019"}, {"symbol": "CCC", "date": "2020"}]
    df = store.read("bars", parts, columns=["symbol", "date", "close"], order_by=["symbol", "date", "close"])
    assert list(df.columns) == ["symbol", "date", "close"]
    assert sorted(set(zip(df["symbol"], df["date"]))) == [("AAA", "2019"), ("CCC", "2020")]
    assert len(df) == 10
    # where + bound params: a value with a quote would break a formatted query, not a bound one.
    filtered = store.read("bars", where="close >= $lo AND symbol <> $sym",
                          params={"lo": 2020.0, "sym": "x' OR '1'='1"})
    # 2019 frames hold 2019..2023 (4 values >= 2020), 2020 frames 2020..2024 (5): 9 per symbol.
    assert len(filtered) == 27 and (filtered["close"] >= 2020).all()
    ts = store.read("bars", where="timestamp <= $end", params={"end": pd.Timestamp("2019-01-02")})
    assert len(ts) == 6  # 2 days x 3 symbols


def test_crash_mid_write_keeps_old_partition_and_leaves_no_temp(tmp_path):
    part = {"symbol": "AAA", "date": "2020"}
    ParquetStore(tmp_path).write("bars", part, _frame("AAA", 2020), metadata={"version": 1})
    crashing = CrashingStore(tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.write("bars", part, _frame("AAA", 2020, n=50, scale=10.0), metadata={"version": 2})
    store = ParquetStore(tmp_path)
    df = store.read("bars", [part])
    assert len(df) == 5  # the old partition, intact
    assert store.read_metadata("bars", part)["metadata"] == {"version": 1}
    leftovers = [p.name for p in (tmp_path / "bars").rglob("*") if p.is_file()]
    assert sorted(leftovers) == sorted([DATA_FILE, META_FILE])


def test_crash_on_first_write_leaves_no_partition(tmp_path):
    with pytest.raises(RuntimeError):
        CrashingStore(tmp_path).write("bars", {"symbol": "AAA"}, _frame("AAA", 2020))
    store = ParquetStore(tmp_path)
    assert not store.exists("bars", {"symbol": "AAA"})
    assert store.list_partitions("bars") == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_sidecar_from_another_write_falls_back_to_footer(tmp_path):
    """A crash between the data rename and the sidecar rename must not pair new data with old metadata."""
    store = ParquetStore(tmp_path)
    part = {"symbol": "AAA"}
    store.write("bars", part, _frame("AAA", 2020), metadata={"version": 1})
    old_sidecar = (store.partition_dir("bars", part) / META_FILE).read_text()
    store.write("bars", part, _frame("AAA", 2020, n=7), metadata={"version": 2})
    (store.partition_dir("bars", part) / META_FILE).write_text(old_sidecar)  # the stale sidecar
    meta = store.read_metadata("bars", part)
    assert meta["metadata"] == {"version": 2} and meta["rows"] == 7


def test_unserialisable_metadata_fails_before_writing(tmp_path):
    store = ParquetStore(tmp_path)
    with pytest.raises(TypeError, match="metadata"):
        store.write("bars", {"symbol": "AAA"}, _frame("AAA", 2020), metadata={"bad": object()})
    assert not (tmp_path / "bars").exists() or not any((tmp_path / "bars").rglob("*.parquet"))


def test_metadata_accepts_timestamps_and_numpy_scalars(tmp_path):
    store = ParquetStore(tmp_path)
    store.write("bars", {"symbol": "AAA"}, _frame("AAA", 2020),
                metadata={"first": pd.Timestamp("2020-01-01"), "n": np.int64(3), "x": np.float32(0.5)})
    meta = json.loads((store.partition_dir("bars", {"symbol": "AAA"}) / META_FILE).read_text())
    assert meta["metadata"] == {"first": "2020-01-01T00:00:00", "n": 3, "x": 0.5}


@pytest.mark.parametrize("partition", [
    {"symbol": "../etc"}, {"symbol": ".."}, {"symbol": "a/b"}, {"symbol": "a\\b"}, {"symbol": ""},
    {"symbol": "a=b"}, {"symbol": 2020}, {"bad dim": "x"}, {"../x": "y"}, {"symbol": " AAA"},
])
def test_bad_partition_keys_are_rejected(tmp_path, partition):
    store = ParquetStore(tmp_path)
    with pytest.raises(PartitionKeyError):
        store.write("bars", partition, _frame("AAA", 2020))
    with pytest.raises(PartitionKeyError):
        store.exists("bars", partition)
    assert not any(tmp_path.rglob("*.parquet"))


def test_bad_asset_names_and_missing_partitions(tmp_path):
    store = ParquetStore(tmp_path)
    with pytest.raises(PartitionKeyError, match="asset name"):
        store.write("../bars", {"symbol": "AAA"}, _frame("AAA", 2020))
    store.write("bars", {"symbol": "AAA"}, _frame("AAA", 2020))
    with pytest.raises(PartitionKeyError, match="BBB"):
        store.read("bars", [{"symbol": "BBB"}])
    assert store.read("bars", []).empty
    assert store.read_metadata("bars", {"symbol": "BBB"}) is None


def test_column_contradicting_partition_value_is_rejected(tmp_path):
    """DuckDB would silently replace the column by the path value: refuse instead of corrupting."""
    store = ParquetStore(tmp_path)
    shard = pd.concat([_frame("AAA", 2020), _frame("BBB", 2020)], ignore_index=True)
    with pytest.raises(PartitionKeyError, match="symbol"):
        store.write("bars", {"symbol": "shard_00"}, shard)
    assert not store.exists("bars", {"symbol": "shard_00"})


def test_index_is_stored_as_columns(tmp_path):
    store = ParquetStore(tmp_path)
    panel = _frame("AAA", 2020).set_index(["timestamp", "symbol"])
    store.write("panel", {"date": "2020"}, panel)
    back = store.read("panel")
    assert {"timestamp", "symbol", "close"} <= set(back.columns)


def test_cleanup_removes_only_our_temp_files(tmp_path):
    store = ParquetStore(tmp_path)
    part = {"symbol": "AAA"}
    store.write("bars", part, _frame("AAA", 2020))
    stray = store.partition_dir("bars", part) / f".{DATA_FILE}.dead{TEMP_SUFFIX}"  # as left by a SIGKILL
    theirs = store.partition_dir("bars", part) / "notes.tmp"  # not ours: kept
    theirs.write_bytes(b"keep")
    stray.write_bytes(b"half")
    assert len(store.read("bars")) == 5  # temp files are never read
    # what `materialize` runs first, under the store's writer lock
    assert remove_stale_temps(tmp_path) == 1 and not stray.exists() and theirs.exists()
