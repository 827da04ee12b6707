"""Validation: every contract defect is reported with table, column, check and offending rows.

Real SQLite files built by `bad_databases` (one defect each), real DuckDB, real pandera.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data import schemas, validation
from plusultra_core.data.contract import SERIES, TABLES
from plusultra_core.errors import DataValidationError
from plusultra_pipeline.cli import main as cli_main
from tests.core.data.bad_databases import DEFECTS, ROW_DEFECTS, STRUCTURE_DEFECTS, build_good, good_frames


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("validation_dbs")


@pytest.fixture(scope="module")
def good_db(db_dir):
    return build_good(db_dir / "good.sqlite")


def _build(db_dir, name):
    path = db_dir / f"{name}.sqlite"
    if not path.exists():
        DEFECTS[name][0](path)
    return path


def test_good_database_is_clean_with_table_stats(good_db):
    report = validation.validate_database(good_db)
    assert report.ok, report.to_text()
    series = report.tables[SERIES]
    assert (series.rows, series.symbols, series.first, series.last) == (80, 2, "2020-01-01", "2020-02-25")
    assert report.tables["indicators"].symbols == 4
    text = report.to_text()
    assert "status: OK" in text and "series: 80 rows, 2 symbols, 2020-01-01 .. 2020-02-25" in text
    json.dumps(report.to_dict())


@pytest.mark.parametrize("defect", ROW_DEFECTS)
def test_row_defect_is_reported_with_table_column_check_and_rows(db_dir, defect):
    path = _build(db_dir, defect)
    table, column, check = DEFECTS[defect][1]
    report = validation.validate_database(path)
    assert report.usable and not report.ok
    found = {(v.table, v.column, v.check): v for v in report.violations}
    assert (table, column, check) in found, report.to_text()
    violation = found[(table, column, check)]
    assert violation.count >= 1 and 1 <= len(violation.failure_cases) <= validation.MAX_FAILURE_ROWS
    assert "rowid" in violation.failure_cases.columns
    text = report.to_text()
    assert f"{table}: column '{column}' failed check '{check}'" in text
    assert str(int(violation.failure_cases["rowid"].iloc[0])) in text
    # other tables stay clean: one defect, one table
    assert all(t.ok for name, t in report.tables.items() if name != table)
    as_json = json.loads(json.dumps(report.to_dict()))
    assert any(v["check"] == check and v["column"] == column for v in as_json["tables"][table]["violations"])


def test_offending_rows_are_the_defective_ones(db_dir):
    report = validation.validate_database(_build(db_dir, "negative_volume"))
    (violation,) = report.violations
    # row 8 of the frame was inserted 9th: rowid 9
    assert violation.failure_cases["rowid"].tolist() == [9]
    assert violation.failure_cases["volume"].tolist() == [-5.0]
    report = validation.validate_database(_build(db_dir, "unknown_symbol"))
    (violation,) = report.violations
    assert violation.count == 3 and set(violation.failure_cases["symbol"]) == {"ZZZ"}


@pytest.mark.parametrize("defect", STRUCTURE_DEFECTS)
def test_structure_defect_is_reported_not_raised(db_dir, defect):
    path = _build(db_dir, defect)
    report = validation.validate_database(path)
    assert not report.ok
    assert any(DEFECTS[defect][1] in p for p in report.problems), report.problems
    assert DEFECTS[defect][1] in report.to_text()
    assert report.usable == (defect != "not_sqlite")


def test_missing_file_is_reported(tmp_path):
    report = validation.validate_database(tmp_path / "nope.sqlite")
    assert not report.usable and "not found" in report.problems[0]


def _series_frame(path) -> pd.DataFrame:
    with sqlite3.connect(path) as conn:
        return pd.read_sql(f"SELECT * FROM {SERIES} ORDER BY rowid", conn)


@pytest.mark.parametrize("defect", [d for d in ROW_DEFECTS if DEFECTS[d][1][0] == SERIES])
def test_duckdb_and_pandera_engines_agree(db_dir, defect):
    """The compiled checks flag exactly what pandera flags on the same rows."""
    path = _build(db_dir, defect)
    sql = {(v.column, v.check) for v in validation.validate_database(path).tables[SERIES].violations}
    frame = _series_frame(path)
    pandera = {(v.column, v.check) for v in validation.frame_violations(
        frame, SERIES, known_symbols=good_frames()["assets"]["symbol"])}
    assert sql == pandera
    assert (DEFECTS[defect][1][1], DEFECTS[defect][1][2]) in sql


def test_every_big_table_check_runs_in_the_array_engine():
    for table in validation.ARRAY_ENGINE_TABLES:
        schema = schemas.TABLE_SCHEMAS[table].to_schema()
        names = {c.error or c.name for col in schema.columns.values() for c in col.checks} | \
                {c.name for c in schema.checks}
        planned = {label for _, label, _ in validation.array_checks(table)}
        assert names | {"not_nullable"} <= planned, names - planned


def test_a_text_check_without_twin_is_a_programming_error(monkeypatch):
    monkeypatch.delitem(schemas.ARRAY_TWINS, "iso_timestamp")
    with pytest.raises(NotImplementedError, match="iso_timestamp"):
        validation.array_checks(SERIES)


def test_every_table_field_has_the_contract_description():
    for table, model in schemas.TABLE_SCHEMAS.items():
        schema = model.to_schema()
        for col in TABLES[table].columns:
            assert schema.columns[col.name].description == col.description


def test_validate_frame_raises_with_table_column_check_and_rows():
    frame = good_frames()[SERIES]
    frame.loc[3, "low"] = -1.0
    with pytest.raises(DataValidationError) as info:
        validation.validate_frame(frame, SERIES)
    err = info.value
    assert (err.table, err.column, err.check) == (SERIES, "low", "greater_than(0)")
    assert err.failure_cases["low"].tolist() == [-1.0]
    message = str(err)
    assert "series" in message and "'low'" in message and "greater_than(0)" in message and "-1.0" in message
    validation.validate_frame(good_frames()[SERIES], SERIES)  # the clean frame passes


def test_validate_frame_referential_check():
    frame = good_frames()[SERIES]
    with pytest.raises(DataValidationError) as info:
        validation.validate_frame(frame, SERIES, known_symbols=["AAA"])
    assert (info.value.column, info.value.check) == ("symbol", "known_symbol")
    assert set(info.value.failure_cases["symbol"]) == {"BBB"}


def _panel(n=4) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([pd.date_range("2020-01-01", periods=n), ["A", "B"]],
                                       names=["timestamp", "symbol"])
    ones = np.ones(len(index))
    return pd.DataFrame({"open": ones, "high": ones * 2, "low": ones / 2, "close": ones, "volume": ones,
                         "ind_rsi": np.nan, "mkt_vix_close": ones}, index=index)


def test_stage_schemas():
    validation.validate_frame(_panel(), "validated_bars")
    with pytest.raises(DataValidationError) as info:  # B before A on the first day
        validation.validate_frame(_panel().iloc[[1, 0, 2, 3, 4, 5, 6, 7]], "validated_bars")
    assert (info.value.column, info.value.check) == ("index", "index_sorted_unique")
    with pytest.raises(DataValidationError) as info:  # time runs backwards
        validation.validate_frame(_panel().iloc[::-1], "validated_bars")
    assert {(v.column, v.check) for v in info.value.report} == {
        ("timestamp", "timestamps_increasing"), ("index", "index_sorted_unique")}
    bad = _panel()
    bad.iloc[2, bad.columns.get_loc("mkt_vix_close")] = np.inf
    with pytest.raises(DataValidationError) as info:
        validation.validate_frame(bad, "validated_bars")
    assert (info.value.column, info.value.check) == ("mkt_vix_close", "finite")


def test_validation_summary():
    panel = _panel(3)
    panel.iloc[1, 0] = -1.0  # (2020-01-01, B) open
    summary = validation.validation_summary(panel)
    assert summary["A"] == {"rows": 3, "first": "2020-01-01T00:00:00", "last": "2020-01-03T00:00:00",
                            "status": "ok"}
    assert summary["B"]["status"] == "1 invalid row(s)"
    assert validation.validation_summary(panel.iloc[:0]) == {}


def test_cli_exit_codes(good_db, db_dir, tmp_path, capsys):
    assert cli_main(["validate", str(good_db)]) == 0
    assert "status: OK" in capsys.readouterr().out
    assert cli_main(["validate", str(_build(db_dir, "zero_price"))]) == 1
    out = capsys.readouterr().out
    assert "column 'low' failed check 'greater_than(0)'" in out
    assert cli_main(["validate", str(_build(db_dir, "missing_table"))]) == 1
    assert cli_main(["validate", str(_build(db_dir, "not_sqlite"))]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    assert cli_main(["validate", "--json", str(good_db)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.mark.parametrize("defect", [d for d in ROW_DEFECTS if DEFECTS[d][1][0] == SERIES])
def test_loader_and_pandera_engines_agree(db_dir, defect):
    """The loader's array engine flags exactly what pandera flags on the same rows, with the
    same first offending rows."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

    path = _build(db_dir, defect)
    with SQLiteMarketDataset(path) as ds, pytest.raises(DataValidationError) as info:
        ds.load_panel()
    ours = {(v.column, v.check): v for v in info.value.report if v.table == SERIES}
    frame = _series_frame(path)
    theirs = {(v.column, v.check): v for v in validation.frame_violations(
        frame, SERIES, known_symbols=good_frames()["assets"]["symbol"])}
    assert set(ours) == set(theirs)
    for key, v in ours.items():
        # pandera shows frame positions, the engine SQLite rowids (rows were inserted in order)
        assert v.count == theirs[key].count, key
        assert (v.failure_cases["rowid"] - 1).tolist() == theirs[key].failure_cases["index"].tolist(), key


def test_timestamps_increasing_with_interleaved_symbols():
    """Rows of several symbols interleaved (not grouped): each is compared with its own symbol's
    previous row, in storage order."""
    frame = pd.DataFrame({"symbol": ["A", "B", "A", "B", "A", "B"],
                          "timestamp": ["2020-01-01", "2020-01-05", "2020-01-02", "2020-01-04", "2020-01-03",
                                        "2020-01-06"]})
    assert schemas.timestamps_increasing(frame).tolist() == [True, True, True, False, True, True]
    grouped = frame.iloc[[0, 2, 4, 1, 3, 5]]
    assert schemas.timestamps_increasing(grouped).tolist() == [True, True, True, True, False, True]
