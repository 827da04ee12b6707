"""The contract's timestamp rules, on real SQLite files: a UTC offset or zone is rejected (never
applied, never dropped) by every reader alike, and a bar dated in the future is reported even by a
read that ends before it."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from plusultra_core.data import contract, schemas, validation
from plusultra_core.data.contract import SERIES
from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
from plusultra_core.errors import DataValidationError
from tests.core.data.bad_databases import DEFECTS, N_DAYS, good_frames, write_database

TEXTS = [  # (text, carries an offset or zone)
    ("2018-01-02", False), ("2018-01-02 20:00", False), ("2018-01-02T20:00:00.123", False),
    ("2018-01-02 20:00-05:00", True), ("2018-01-02T20:00:00Z", True), ("2018-01-02 20:00:00 UTC", True),
    ("2018-01-02 20:00:00+05:30", True), ("2018-01-02T20:00:00+0530", True),
    ("2018-01-02 20:00:00 America/New_York", True), ("2020-13-45", False), ("not a date", False),
]


def test_duckdb_and_python_read_timestamp_text_alike():
    """`contract.timestamp_sql` (the loader, fingerprints) and `schemas.parse_timestamps` (pandera)
    agree on every text: zoned ones get no time at all (a plain cast would drop the offset)."""
    texts = [t for t, _ in TEXTS]
    conn = duckdb.connect()
    try:
        conn.register("texts", pd.DataFrame({"t": texts}))
        sql = conn.execute(f"SELECT {contract.zoned_sql('t')} AS z, {contract.timestamp_sql('t')} AS ts "
                           "FROM texts").df()
    finally:
        conn.close()
    expected = [z for _, z in TEXTS]
    assert sql["z"].tolist() == expected == schemas._zoned(np.array(texts, dtype=object)).tolist()
    python = schemas.parse_timestamps(np.array(texts, dtype=object))
    np.testing.assert_array_equal(sql["ts"].to_numpy("datetime64[ns]"), python)
    assert np.isnat(python[np.array(expected)]).all()
    assert python[1] == np.datetime64("2018-01-02T20:00")


def _build(tmp_path, defect):
    return DEFECTS[defect][0](tmp_path / f"{defect}.sqlite")


def test_a_zoned_bar_is_rejected_and_in_no_partition(tmp_path):
    path = _build(tmp_path, "zoned_timestamp")
    with SQLiteMarketDataset(path) as ds:
        with pytest.raises(DataValidationError, match=r"series\.timestamp 'naive_timestamp'") as info:
            ds.load_panel(start="2020-01-01", end="2020-01-31")
        assert "2020-01-14 20:00:00-05:00" in str(info.value)  # the offending row, as written
        assert (info.value.table, info.value.column, info.value.check) == (SERIES, "timestamp", "naive_timestamp")
        # not stored at 20:00 on the 14th, nor at 01:00 UTC on the 15th: left out, as unparseable rows are
        panel = ds.load_panel(validate=False)
        aaa = panel.xs("AAA", level="symbol").index
        assert len(panel) == 2 * N_DAYS - 1 and (aaa == aaa.normalize()).all()
        assert pd.Timestamp("2020-01-14") not in aaa
        prints = ds.partition_fingerprints("month")
        assert prints["n_rows"].sum() == 2 * N_DAYS - 1
        assert ds.date_range() == (pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-25"))


def test_a_future_bar_is_reported_even_by_a_read_that_ends_before_it(tmp_path):
    """Partitions end at the current period, so the read of the last one ends before a future bar."""
    path = _build(tmp_path, "future_bar")
    with SQLiteMarketDataset(path) as ds:
        with pytest.raises(DataValidationError, match=r"series\.timestamp 'not_in_future'") as info:
            ds.load_panel(["AAA"], start="2020-01-01", end="2020-01-31")
        (row,) = info.value.failure_cases.to_dict("records")
        assert row["symbol"] == "AAA" and pd.Timestamp(row["timestamp"]) > pd.Timestamp.now()
        # unvalidated, a bounded read stays inside its bounds
        assert ds.load_panel(["AAA"], start="2020-01-01", end="2020-01-31", validate=False).shape[0] == 23
    report = validation.validate_database(path)
    assert [(v.table, v.column, v.check, v.count) for v in report.violations] == \
        [(SERIES, "timestamp", "not_in_future", 1)]


def test_bars_dated_today_and_tomorrow_are_not_in_the_future(tmp_path):
    """One day of slack: east of UTC an exchange's date runs up to a day ahead of UTC's."""
    frames = good_frames()
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    last = frames[SERIES][frames[SERIES].symbol == "AAA"].tail(1)
    extra = [last.assign(timestamp=(today + pd.Timedelta(days=d)).strftime("%Y-%m-%d")) for d in (0, 1)]
    frames[SERIES] = pd.concat([frames[SERIES], *extra], ignore_index=True)
    path = write_database(tmp_path / "today.sqlite", frames)
    assert validation.validate_database(path).ok
    with SQLiteMarketDataset(path) as ds:
        assert ds.load_panel(["AAA"]).index.get_level_values("timestamp").max() == today + pd.Timedelta(days=1)


def test_a_zoned_bar_on_a_day_without_bars_adds_no_trading_day(tmp_path):
    """Saturday 2020-01-11 10:00+09:00 (Friday in UTC): no reader keeps that day (a cast would keep
    the Saturday), so the partition calendar gets no day that only a rejected row claims."""
    frames = good_frames()
    last = frames[SERIES][frames[SERIES].symbol == "AAA"].tail(1)
    saturday = last.assign(timestamp="2020-01-11 10:00:00+09:00")
    frames[SERIES] = pd.concat([frames[SERIES], saturday], ignore_index=True)
    path = write_database(tmp_path / "saturday.sqlite", frames)
    with SQLiteMarketDataset(path) as ds:
        days = ds.trading_days()
        assert len(days) == N_DAYS and pd.Timestamp("2020-01-11") not in days
        assert ds.partition_fingerprints("year")["n_rows"].sum() == 2 * N_DAYS
    assert [v.check for v in validation.validate_database(path).violations] == ["naive_timestamp"]
