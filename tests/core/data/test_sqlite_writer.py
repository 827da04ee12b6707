"""`atomic_database`: a database appears whole at its path or not at all, and never clobbers by accident."""

from __future__ import annotations

import sqlite3

import pytest

from plusultra_core.data.contract import CONTRACT_TABLES
from plusultra_core.data.sqlite_writer import DatabaseWriteError, atomic_database, table_row_counts


def test_a_failed_build_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "market.sqlite"
    with atomic_database(path) as conn:
        assert set(table_row_counts(conn)) == set(CONTRACT_TABLES)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="half built"):
        with atomic_database(path, overwrite=True) as conn:
            conn.execute("CREATE TABLE extra (x)")
            raise RuntimeError("half built")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["market.sqlite"]


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path):
    path = tmp_path / "market.sqlite"
    with pytest.raises(DatabaseWriteError, match="already exists"):
        with atomic_database(path) as conn:
            path.write_bytes(b"someone else's database")  # after the up-front check, before the move
            conn.execute("SELECT 1")
    assert path.read_bytes() == b"someone else's database"
    assert [p.name for p in tmp_path.iterdir()] == ["market.sqlite"]


def test_the_callers_own_file_exists_error_is_not_renamed(tmp_path):
    with pytest.raises(FileExistsError, match="the caller's"):
        with atomic_database(tmp_path / "market.sqlite"):
            raise FileExistsError("the caller's")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_with_a_complete_database(tmp_path):
    path = tmp_path / "market.sqlite"
    path.write_bytes(b"old")
    with atomic_database(path, overwrite=True) as conn:
        conn.execute("CREATE TABLE marker (x)")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'marker'").fetchone() == ("marker",)
    finally:
        conn.close()
