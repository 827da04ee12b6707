"""Hostile database paths: every character of the path is literal, the file stays read-only and
no sibling file appears.

A path pasted into a ``file:`` URI would be cut at ``#`` or ``?`` (SQLite then creates an empty
file at the cut-off name and reads that) and ``%41`` would be decoded to ``A``; each name below
breaks one of those, on real SQLite files read by both SQLite and DuckDB.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plusultra_core.data import contract, duck, validation
from plusultra_core.data.contract import SERIES
from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
from tests.core.data.bad_databases import N_DAYS, TRADABLE, build_good

ROWS = N_DAYS * len(TRADABLE)  # series rows of the good database

NAMES = ["db#fragment.sqlite", "db?mode=rwc.sqlite", "%41.sqlite", "with space.sqlite", "it's.sqlite",
         "dir#x?y/it's %2F.sqlite"]


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(params=NAMES)
def odd_db(request, tmp_path) -> Path:
    path = tmp_path / request.param
    path.parent.mkdir(parents=True, exist_ok=True)
    build_good(path)
    # a decoy where a decoding reader would land (%41 -> A): an empty, table-less SQLite file
    sqlite3.connect(tmp_path / "A.sqlite").close()
    return path


# (opener, name of the series table through it, what a write raises)
READERS = {"sqlite": (contract.open_readonly, SERIES, (sqlite3.OperationalError, "readonly")),
           "duckdb": (duck.connect, f"{duck.MARKET}.{SERIES}", (Exception, "(?i)read.only"))}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_the_real_file_is_read_read_only(odd_db, tmp_path, reader):
    connect, table, (error, message) = READERS[reader]
    before = _listing(tmp_path)
    conn = connect(odd_db)
    try:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (ROWS,)
        with pytest.raises(error, match=message):
            conn.execute(f"DELETE FROM {table}")
    finally:
        conn.close()
    assert _listing(tmp_path) == before


def test_validation_and_loader_see_the_real_file(odd_db, tmp_path):
    before = _listing(tmp_path)
    report = validation.validate_database(odd_db)
    assert report.ok, report.to_text()
    assert report.tables[SERIES].rows == ROWS
    with SQLiteMarketDataset(odd_db) as ds:
        assert len(ds.load_panel()) == ROWS
    assert _listing(tmp_path) == before


def test_readonly_uri_encodes_every_special_character(tmp_path):
    uri = contract.readonly_uri(tmp_path / "a#b?c%41 d'e")
    assert uri.endswith("/a%23b%3Fc%2541%20d%27e?mode=ro") and uri.startswith("file:///")
