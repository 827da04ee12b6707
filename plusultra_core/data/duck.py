"""DuckDB connections that read the SQLite market database in bulk, offline.

DuckDB reads SQLite through its ``sqlite_scanner`` extension. ``INSTALL sqlite_scanner`` would
download it, which is not possible offline, so the extension is LOADed from the file shipped by
the PyPI package ``duckdb-extension-sqlite-scanner`` (pinned to the same release as ``duckdb``:
an extension only loads into the DuckDB build it was compiled for). DuckDB verifies the file's
signature on LOAD; `connect` pays that once per process, or not at all when a SHA-256 digest
recorded after an earlier verification (`trust_file`) still matches the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb

from plusultra_core import atomic
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


def trust_file() -> Path:
    """Where SHA-256 digests of extension files DuckDB has verified are remembered across processes
    (``$PLUSULTRA_CACHE_DIR``, else ``$XDG_CACHE_HOME/plusultra``, else ``~/.cache/plusultra``)."""
    root = os.environ.get("PLUSULTRA_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plusultra"
    return Path(root) / "verified_duckdb_extensions.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remembered(ext: Path) -> bool:
    """True when these exact bytes were verified by DuckDB in an earlier process.

    The record only counts when this user owns it and nobody else can write it: it then says
    no more than the user's own files already do.
    """
    path = trust_file()
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
        digests = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(digests, dict) and digests.get(str(ext)) == _digest(ext)


def _remember(ext: Path) -> None:
    """Record the digest of an extension DuckDB has just verified (best effort, atomic)."""
    path = trust_file()
    try:
        try:
            digests = json.loads(path.read_text())
            digests = digests if isinstance(digests, dict) else {}
        except (OSError, ValueError):
            digests = {}
        digests[str(ext)] = _digest(ext)
        atomic.write_file(path, json.dumps(digests), mode=0o600)  # `_remembered` ignores a record others can write
    except OSError:
        pass  # a read-only home only costs the verification again next time


def connect(sqlite_path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with sqlite_scanner loaded; ``sqlite_path`` attached read-only as ``market``.

    The caller is expected to have checked that the file is a SQLite database
    (`contract.open_readonly`); DuckDB's own message for a bad file is less clear.
    """
    global _verified
    ext = extension_path()
    # DuckDB checks the extension's signature on every LOAD: hashing and RSA-checking the 35 MB
    # file costs 0.2-0.4 s per connection. The first connection of the process verifies it (or
    # finds these exact bytes, by SHA-256 at ~0.08 s, among those DuckDB verified in an earlier
    # process, see `trust_file`); later ones skip the check while the same file is loaded.
    fid = _file_id(ext)
    trusted = _verified == fid or _remembered(ext)
    conn = duckdb.connect(":memory:", config={"allow_unsigned_extensions": "true"} if trusted else {})
    try:
        conn.execute(f"LOAD {_sql_string(str(ext))}")
        if not trusted:
            _remember(ext)
        _verified = fid
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
