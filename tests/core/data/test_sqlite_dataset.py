"""SQLiteMarketDataset: panel shape and joins, no look-ahead, raising before returning, fingerprints."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data.contract import ASSETS, BENCHMARKS, INDICATORS, SERIES
from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset, market_column
from plusultra_core.errors import ConfigError, ContractError, DataValidationError, PartitionKeyError
from tests.core.data.bad_databases import DEFECTS, ROW_DEFECTS, build_good, good_frames


@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    return build_good(tmp_path_factory.mktemp("dataset") / "good.sqlite")


@pytest.fixture(scope="module")
def dataset(good_db):
    with SQLiteMarketDataset(good_db) as ds:
        yield ds


@pytest.fixture(scope="module")
def panel(dataset):
    return dataset.load_panel()


def test_small_reads(dataset):
    assert dataset.symbols() == ["AAA", "BBB"]
    assert dataset.symbols(tradable_only=False) == ["AAA", "BBB", "CORE_CPI", "VIX"]
    assert list(dataset.assets()["symbol"]) == ["AAA", "BBB", "CORE_CPI", "VIX"]
    assert dataset.date_range() == (pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-25"))


def test_panel_shape_index_and_columns(panel):
    frames = good_frames()
    assert panel.shape == (len(frames[SERIES]), 8)
    assert list(panel.index.names) == ["timestamp", "symbol"]
    assert panel.index.get_level_values("timestamp").dtype == "datetime64[ns]"
    assert panel.index.is_monotonic_increasing and panel.index.is_unique
    assert list(panel.columns) == ["open", "high", "low", "close", "volume", "ind_rsi",
                                   "mkt_core_cpi_value", "mkt_vix_close"]
    assert (panel.dtypes == "float64").all()
    # values are the source rows, re-keyed
    src = frames[SERIES].assign(timestamp=lambda d: pd.to_datetime(d.timestamp)).set_index(
        ["timestamp", "symbol"]).sort_index()
    pd.testing.assert_frame_equal(panel[list(src.columns)], src, check_index_type=False, check_names=False)


def test_indicators_pivot_with_nan_where_absent(panel):
    rsi = good_frames()[INDICATORS].query("name == 'rsi'")
    expected = pd.Series(rsi["value"].to_numpy(), index=pd.MultiIndex.from_arrays(
        [pd.to_datetime(rsi["timestamp"]), rsi["symbol"]]))
    got = panel["ind_rsi"]
    assert got.notna().sum() == len(rsi)
    np.testing.assert_array_equal(got.loc[expected.index.to_list()].to_numpy(), expected.to_numpy())
    assert got.xs("BBB", level="symbol").isna().sum() == 20  # BBB has the indicator every other day


def test_market_series_as_of_publication_lag(panel):
    cpi = panel["mkt_core_cpi_value"].xs("AAA", level="symbol")
    # 2019-12-01 + 45 days = 2020-01-15: not visible on the 14th, visible from the 15th
    assert np.isnan(cpi.loc["2020-01-14"]) and cpi.loc["2020-01-15"] == 1.0
    # 2020-01-01 + 45 days = Saturday 2020-02-15: still the old print on Friday, the new one Monday
    assert cpi.loc["2020-02-14"] == 1.0 and cpi.loc["2020-02-17"] == 2.0
    # the February print is public only on 2020-03-17, after the panel ends
    assert cpi.max() == 2.0
    # same value for every symbol on a date
    assert (panel["mkt_core_cpi_value"].xs("BBB", level="symbol").fillna(-1) == cpi.fillna(-1)).all()


def test_market_series_match_brute_force_as_of(panel):
    """Every mkt_ value equals the latest observation public at that bar (computed naively)."""
    frames = good_frames()
    lags = frames[ASSETS].set_index("symbol")["publication_lag_days"]
    obs = frames[INDICATORS][frames[INDICATORS]["symbol"].isin(["VIX", "CORE_CPI"])]
    for (sym, name), grp in obs.groupby(["symbol", "name"]):
        avail = pd.to_datetime(grp["timestamp"]) + pd.Timedelta(days=int(lags[sym]))
        for ts, value in panel[market_column(sym, name)].xs("AAA", level="symbol").items():
            public = grp["value"][(avail <= ts).to_numpy()]
            expected = public.iloc[avail[avail <= ts].argmax()] if len(public) else np.nan
            assert value == expected or (np.isnan(value) and np.isnan(expected)), (sym, ts)


def test_filters_are_inclusive_and_subset_symbols(dataset):
    sub = dataset.load_panel(["BBB"], "2020-01-10", "2020-01-15")
    assert list(sub.index.get_level_values("symbol").unique()) == ["BBB"]
    assert sub.index.get_level_values("timestamp").min() == pd.Timestamp("2020-01-10")
    assert sub.index.get_level_values("timestamp").max() == pd.Timestamp("2020-01-15")
    assert len(sub) == 4
    # market-wide values come from observations before ``start`` too (as-of, not cut off)
    assert sub["mkt_vix_close"].notna().all()
    assert sub.loc[("2020-01-15", "BBB"), "mkt_core_cpi_value"] == 1.0


def test_empty_range_keeps_columns(dataset):
    empty = dataset.load_panel(start="2030-01-01")
    assert empty.empty and {"open", "close", "mkt_vix_close"} <= set(empty.columns)
    assert list(empty.index.names) == ["timestamp", "symbol"]


def test_unvalidated_load_equals_validated(dataset, panel):
    pd.testing.assert_frame_equal(dataset.load_panel(validate=False), panel)


def test_bad_requests(dataset):
    with pytest.raises(PartitionKeyError, match="ZZZ, QQQ"):
        dataset.load_panel(["AAA", "ZZZ", "QQQ"])
    with pytest.raises(PartitionKeyError, match="VIX"):
        dataset.load_panel(["VIX"])
    with pytest.raises(ConfigError, match="start"):
        dataset.load_panel(start="2020-02-01", end="2020-01-01")
    with pytest.raises(ConfigError, match="not a date"):
        dataset.load_panel(start="yesterday-ish")
    with pytest.raises(PartitionKeyError, match="week"):
        dataset.partition_fingerprints("week")


@pytest.mark.parametrize("defect", ["not_sqlite", "missing_table", "missing_column"])
def test_unusable_files_raise_contract_error_naming_the_path(tmp_path, defect):
    path = DEFECTS[defect][0](tmp_path / f"{defect}.sqlite")
    with pytest.raises(ContractError, match=str(path)) as info:
        SQLiteMarketDataset(path)
    assert DEFECTS[defect][1] in str(info.value)
    with pytest.raises(ContractError, match="not found"):
        SQLiteMarketDataset(tmp_path / "absent.sqlite")


@pytest.mark.parametrize("defect", ROW_DEFECTS)
def test_loader_raises_before_returning(tmp_path, defect):
    path = DEFECTS[defect][0](tmp_path / f"{defect}.sqlite")
    table, column, check = DEFECTS[defect][1]
    result = None
    with SQLiteMarketDataset(path) as ds, pytest.raises(DataValidationError) as info:
        # benchmarks are not part of the panel: their own reader checks them
        result = ds.benchmark_returns() if table == BENCHMARKS else ds.load_panel()
    assert result is None
    found = {(v.table, v.column, v.check) for v in info.value.report}
    assert (table, column, check) in found
    assert f"column '{column}' failed check '{check}'" in str(info.value)


def test_indicator_defects_are_caught(tmp_path):
    frames = good_frames()
    frames[INDICATORS].loc[3, "value"] = np.inf
    frames[INDICATORS] = pd.concat([frames[INDICATORS], frames[INDICATORS].tail(1)], ignore_index=True)
    from tests.core.data.bad_databases import write_database

    path = write_database(tmp_path / "ind.sqlite", frames, loose=(INDICATORS,))
    with SQLiteMarketDataset(path) as ds, pytest.raises(DataValidationError) as info:
        ds.load_panel()
    found = {(v.table, v.column, v.check) for v in info.value.report}
    assert {(INDICATORS, "value", "finite"),
            (INDICATORS, "timestamp, symbol, name", "multiple_fields_uniqueness")} <= found


def _prints(path, period="month") -> dict:
    with SQLiteMarketDataset(path) as ds:
        fp = ds.partition_fingerprints(period)
    return {(r.symbol, r.period_start.strftime("%Y-%m")): (r.n_rows, r.checksum) for r in fp.itertuples()}


def test_fingerprint_columns(dataset):
    fp = dataset.partition_fingerprints("month")
    assert list(fp.columns) == ["symbol", "period_start", "n_rows", "first_timestamp", "last_timestamp", "checksum"]
    assert fp["period_start"].dtype == "datetime64[ns]" and fp["checksum"].map(type).eq(str).all()
    first = fp.iloc[0]
    assert (first.symbol, first.period_start, first.n_rows) == ("AAA", pd.Timestamp("2020-01-01"), 23)
    assert (first.first_timestamp, first.last_timestamp) == (pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-31"))
    year = dataset.partition_fingerprints("year")
    assert len(year) == 2 and year["n_rows"].tolist() == [40, 40]


@pytest.mark.parametrize("edit, changed", [
    (f"UPDATE {SERIES} SET close = close * 1.0001 WHERE symbol = 'AAA' AND timestamp = '2020-01-07'",
     {("AAA", "2020-01")}),
    (f"INSERT INTO {SERIES} VALUES ('BBB', '2020-02-26', 1, 1, 1, 1, 1)", {("BBB", "2020-02")}),
    (f"DELETE FROM {SERIES} WHERE symbol = 'AAA' AND timestamp = '2020-02-03'", {("AAA", "2020-02")}),
    (f"UPDATE {INDICATORS} SET value = 0 WHERE symbol = 'AAA' AND name = 'rsi' AND timestamp = '2020-02-04'",
     {("AAA", "2020-02")}),
    # a market-wide observation reaches every symbol in the periods where it is in force
    (f"UPDATE {INDICATORS} SET value = 99 WHERE symbol = 'VIX' AND timestamp = '2020-01-07'",
     {("AAA", "2020-01"), ("BBB", "2020-01")}),
])
def test_fingerprints_change_only_for_the_touched_partitions(good_db, tmp_path, edit, changed):
    before = _prints(good_db)
    path = tmp_path / "edited.sqlite"
    shutil.copyfile(good_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute(edit)
    after = _prints(path)
    diff = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert diff == changed


def test_demo_database_panel(demo_db_path):
    with SQLiteMarketDataset(demo_db_path) as ds:
        assert ds.symbols() == ["MSFT", "NASDAQ", "SP500"]
        panel = ds.load_panel(["SP500", "MSFT"], "2010-01-01", "2010-12-31")
    assert {"mkt_vix_close", "mkt_wti_close", "mkt_core_cpi_value", "mkt_ff_mkt_rf"} <= set(panel.columns)
    assert set(panel.index.get_level_values("symbol")) == {"SP500", "MSFT"}
    assert panel.index.is_monotonic_increasing and panel.index.is_unique
    # a year of daily bars: monthly macro values are present and change only a dozen times
    assert panel["mkt_core_cpi_value"].notna().all()
    assert panel["mkt_core_cpi_value"].xs("SP500", level="symbol").nunique() <= 13


def test_loader_output_passes_the_full_stage_schema(panel):
    """The loader skips re-running inherited row checks; the full stage schema still holds."""
    from plusultra_core.data.validation import validate_frame

    validate_frame(panel, "validated_bars")


def test_duck_connect_quotes_paths_and_names_missing_files(good_db, tmp_path):
    from plusultra_core.data import duck

    odd = tmp_path / "it's a db.sqlite"
    shutil.copyfile(good_db, odd)
    conn = duck.connect(odd)
    try:
        assert conn.execute(f"SELECT count(*) FROM {duck.MARKET}.{SERIES}").fetchone() == (80,)
        with pytest.raises(Exception):  # attached read-only
            conn.execute(f"DELETE FROM {duck.MARKET}.{SERIES}")
    finally:
        conn.close()
    assert duck.extension_path().name == "sqlite_scanner.duckdb_extension"
    with pytest.raises(ContractError, match="absent.sqlite"):
        duck.connect(tmp_path / "absent.sqlite")


def test_extension_trust_record(tmp_path, monkeypatch):
    """A verified extension's digest is remembered; only an exact, private record is trusted."""
    from plusultra_core.data import duck

    monkeypatch.setenv("PLUSULTRA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(duck, "_verified", None)  # as in a fresh process
    ext = duck.extension_path()
    assert not duck._remembered(ext)
    duck.connect().close()  # DuckDB verifies the signature, then the digest is recorded
    record = duck.trust_file()
    assert json.loads(record.read_text()) == {str(ext): hashlib.sha256(ext.read_bytes()).hexdigest()}
    assert record.stat().st_mode & 0o777 == 0o600
    assert duck._remembered(ext)
    monkeypatch.setattr(duck, "_verified", None)
    duck.connect().close()  # trusted through the record
    record.chmod(0o666)  # writable by others: ignored
    assert not duck._remembered(ext)
    record.chmod(0o600)
    record.write_text(json.dumps({str(ext): "0" * 64}))  # other bytes: ignored
    assert not duck._remembered(ext)
    record.write_text("not json")
    assert not duck._remembered(ext)


@pytest.mark.parametrize("defect, rows", [("unknown_symbol", 80), ("bad_timestamp", 79)])
def test_unvalidated_load_drops_rows_it_cannot_place(tmp_path, defect, rows):
    """Without validation, rows of unknown symbols or with unparseable timestamps are left out."""
    path = DEFECTS[defect][0](tmp_path / f"{defect}.sqlite")
    with SQLiteMarketDataset(path) as ds:
        panel = ds.load_panel(validate=False)
    assert len(panel) == rows and set(panel.index.get_level_values("symbol")) == {"AAA", "BBB"}
    assert panel.index.is_monotonic_increasing and panel.index.is_unique
