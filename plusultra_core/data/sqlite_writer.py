"""Atomic creation of contract SQLite files (used by the demo and synthetic database builders).

A database is built in a temporary file next to its destination (same directory, so the final
rename never crosses a filesystem) with journaling and fsync switched off — there is nothing to
protect while the file is private — and only a complete, committed, fsynced file is renamed into
place. Any exception removes the temporary file, so a failed or killed build leaves either the
previous file or nothing, never half a database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from plusultra_core import atomic
from plusultra_core.data.contract import CONTRACT_TABLES, create_schema
from plusultra_core.errors import PlusUltraError


class DatabaseWriteError(PlusUltraError, ValueError):
    """A database file cannot be written as asked (exists, missing directory, bad argument)."""


def check_destination(path: str | Path, *, overwrite: bool) -> Path:
    """Validate where a new database will go; return it as a `Path`.

    Raises `DatabaseWriteError` naming the path when its directory does not exist, when the path is
    a directory, or when a file is already there and ``overwrite`` is False.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DatabaseWriteError(f"{path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise DatabaseWriteError(f"{path}: is a directory, expected a database file path")
    if path.exists() and not overwrite:
        raise DatabaseWriteError(_exists_message(path))
    return path


def _exists_message(path: Path) -> str:
    return f"{path}: file already exists (pass overwrite=True / --force to replace it)"


@contextmanager
def atomic_database(path: str | Path, *, overwrite: bool = False) -> Iterator[sqlite3.Connection]:
    """Yield a connection to a fresh contract database that appears at ``path`` only on success.

    The schema (every contract table and index) is created before yielding. On normal exit the
    connection is committed and closed, and `plusultra_core.atomic` fsyncs the file and moves it
    onto ``path``; with ``overwrite=False`` the move refuses to clobber a file that appeared
    meanwhile. On any exception the temporary file is deleted and the exception propagates.
    """
    path = check_destination(path, overwrite=overwrite)
    built = False
    try:
        with atomic.staged_path(path, exclusive=not overwrite) as tmp:
            conn = sqlite3.connect(tmp)
            try:
                # The file is private until the move (which fsyncs it): no journal, no fsync per write.
                conn.execute("PRAGMA journal_mode=OFF")
                conn.execute("PRAGMA synchronous=OFF")
                create_schema(conn)
                yield conn
                conn.commit()
            finally:
                conn.close()
            built = True
    except FileExistsError:
        if not built:
            raise  # raised by the caller's own code, not by the no-clobber move
        raise DatabaseWriteError(_exists_message(path)) from None


def table_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row count of every contract table in ``conn`` (table name -> rows)."""
    return {name: conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] for name in CONTRACT_TABLES}
