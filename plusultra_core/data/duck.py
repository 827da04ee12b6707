"""DuckDB connections that read the SQLite market database in bulk, offline.

DuckDB reads SQLite through its ``sqlite_scanner`` extension. ``INSTALL sqlite_scanner`` would
download it, which is not possible offline, so the extension is LOADed from the file shipped by
the PyPI package ``duckdb-extension-sqlite-scanner`` (pinned to the same release as ``duckdb``:
an extension only loads into the DuckDB build it was compiled for).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from plusultra_core.errors import ContractError, PlusUltraError

# Name under which the SQLite file is attached: queries say ``market.<table constant>``.
MARKET = "market"
EXTENSION_PACKAGE = "duckdb-extension-sqlite-scanner"


def _sql_string(value: str) -> str:
    """A SQL string literal. ATTACH takes no bound parameters, so the path is quoted by hand."""
    if "\x00" in value:
        raise ContractError(f"database path contains a NUL byte: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def extension_path() -> Path:
    """Path of the sqlite_scanner extension file matching the installed DuckDB."""
    expected = f"{EXTENSION_PACKAGE}=={duckdb.__version__}"
    try:
        import duckdb_extension_sqlite_scanner as pkg
    except ImportError as exc:
        raise PlusUltraError(f"the DuckDB SQLite extension is not installed: pip install '{expected}'") from exc
    path = (Path(pkg.__file__).parent / "extensions" / f"v{duckdb.__version__}"
            / "sqlite_scanner.duckdb_extension")
    if not path.is_file():
        raise PlusUltraError(f"DuckDB SQLite extension not found at {path}; install '{expected}' "
                             "(the extension must match the DuckDB release exactly)")
    return path


# (path, size, mtime) of the extension file once DuckDB has verified its signature in this process
_verified: tuple | None = None


def _file_id(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def connect(sqlite_path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with sqlite_scanner loaded; ``sqlite_path`` attached read-only as ``market``.

    The caller is expected to have checked that the file is a SQLite database
    (`contract.open_readonly`); DuckDB's own message for a bad file is less clear.
    """
    global _verified
    ext = extension_path()
    # DuckDB checks the extension's signature on every LOAD: hashing the 35 MB file costs ~0.8 s
    # per connection. The first connection of the process verifies it; later ones skip the check
    # only while the very same file (path, size, mtime) is loaded.
    trusted = _verified == _file_id(ext)
    conn = duckdb.connect(":memory:", config={"allow_unsigned_extensions": "true"} if trusted else {})
    try:
        conn.execute(f"LOAD {_sql_string(str(ext))}")
        _verified = _file_id(ext)
        conn.execute(f"SET threads = {int(os.cpu_count() or 1)}")
        conn.execute("SET enable_progress_bar = false")
        if sqlite_path is not None:
            path = Path(sqlite_path)
            if not path.is_file():
                raise ContractError(f"market database not found: {path}")
            conn.execute(f"ATTACH {_sql_string(str(path.resolve()))} AS {MARKET} (TYPE sqlite, READ_ONLY)")
    except BaseException:
        conn.close()
        raise
    return conn
