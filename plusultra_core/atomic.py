"""Atomic file writes: the one place that knows how to replace a file so no reader sees half of it.

A file is written under a temporary name in its own directory (so the final rename never crosses a
file system), flushed and fsynced, then moved onto its name with ``os.replace``, which is atomic on
POSIX and Windows; on POSIX the directory is fsynced as well, so the rename itself survives a power
cut. A process killed at any moment leaves the old file (or none) and at most a stray temporary,
never a partial file. An exception removes the temporary and leaves the old file untouched.

A group of files (`write_files`) is all-or-nothing up to the renames: every temporary is written
and fsynced before the first rename, so a failure while writing changes nothing. The renames are
separate system calls, though, and a crash between two of them leaves some files new and some
old; files that must never be mixed (a checkpoint and its sidecar) record a hash of one in the
other so a reader can tell.

Temporaries are named ``.<name>.<random hex><TEMP_SUFFIX>``: hidden from readers that skip dot
files, unique per writer (two threads or processes writing one path never share a temporary), and
recognisable, so `remove_stale_temps` deletes only files this module made.

A payload is ``bytes``, ``str`` (written as UTF-8), or a callable ``writer(temp_path)`` for
libraries that insist on writing to a path themselves (pyarrow, ``torch.save``, sqlite3).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Union

TEMP_SUFFIX = ".plusultra.tmp"
_NAME_KEPT = 100  # characters of the target's name kept in a temp name (names are capped at 255 bytes)

Payload = Union[bytes, str, Callable[[Path], object]]


@contextmanager
def staged_path(path: str | os.PathLike, *, exclusive: bool = False, mode: int = 0o666) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path``; on a clean exit, fsync it and move it onto ``path``.

    For writers that need the temporary for longer than one call (an open sqlite connection handed
    to the caller). The parent directory is created if needed. ``mode`` is the new file's
    permissions before the umask. With ``exclusive=True`` the move refuses to replace an existing
    file and raises `FileExistsError` (the temporary is removed). On any exception in the block the
    temporary is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _reserve(path, mode)
    try:
        yield tmp
        _fsync_file(tmp)
        _publish(tmp, path, exclusive=exclusive)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_file(path: str | os.PathLike, payload: Payload, *, exclusive: bool = False,
               mode: int = 0o666) -> Path:
    """Atomically replace ``path`` with ``payload`` (see the module docstring); return ``path``.

    ``exclusive`` and ``mode`` as in `staged_path`.
    """
    with staged_path(path, exclusive=exclusive, mode=mode) as tmp:
        _write_payload(tmp, payload)
    return Path(path)


def write_files(files: Mapping[str | os.PathLike, Payload]) -> list[Path]:
    """Write every ``path -> payload`` of ``files`` to temporaries, fsync them all, then rename each.

    Renames run in the mapping's order, so put the file whose presence means "complete" last. If a
    payload fails, every temporary is removed and no final file is touched. Returns the final
    paths in order.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for final, payload in files.items():
            final = Path(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = _reserve(final, 0o666)
            staged.append((tmp, final))
            _write_payload(tmp, payload)
            _fsync_file(tmp)
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    for directory in dict.fromkeys(final.parent for _, final in staged):
        _fsync_dir(directory)
    return [final for _, final in staged]


def remove_stale_temps(root: str | os.PathLike, *, older_than: float = 0.0) -> int:
    """Delete the temporaries this module left under ``root`` (recursively) when a writer was killed.

    Only files named ``.*<TEMP_SUFFIX>`` are touched; symbolic links are neither followed nor
    removed. A temporary younger than ``older_than`` seconds is kept: pass a margin when writers
    may be running, since removing a live writer's temporary makes its final rename fail. Returns
    how many files were removed.
    """
    cutoff = time.time() - older_than
    removed = 0
    for directory, _, names in os.walk(root):
        for name in names:
            candidate = Path(directory, name)
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)) or candidate.is_symlink():
                continue
            try:
                if candidate.stat().st_mtime <= cutoff:
                    candidate.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # its writer finished (renamed it) meanwhile
    return removed


def _reserve(path: Path, mode: int) -> Path:
    """Create a new, empty, uniquely named temporary next to ``path``.

    Not ``tempfile.mkstemp``: it forces mode 0600, which would make every report and store file
    private to its writer. ``O_EXCL`` gives the same guarantee that no two writers share a name.
    """
    while True:
        tmp = path.with_name(f".{path.name[:_NAME_KEPT]}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode))
            return tmp
        except FileExistsError:
            continue  # a 128-bit collision: draw again


def _write_payload(tmp: Path, payload: Payload) -> None:
    if callable(payload):
        payload(tmp)
        return
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload for {tmp.name} must be bytes, str or a writer(path), "
                        f"got {type(payload).__name__}")
    with open(tmp, "wb") as fh:
        fh.write(payload)


def _fsync_file(path: Path) -> None:
    # Reopened because a writer callable wrote through its own handle; fsync flushes the file, not
    # the handle. Windows only fsyncs handles opened for writing.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, *, exclusive: bool) -> None:
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and fails if the destination exists: no check-then-rename race
    except FileExistsError:
        raise FileExistsError(f"{path}: file already exists") from None
    except OSError:
        # File systems without hard links: check, then rename (a tiny race, acceptable there).
        if path.exists():
            raise FileExistsError(f"{path}: file already exists") from None
        os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); best effort, the rename has happened already."""
    if os.name != "posix":
        return  # Windows cannot open a directory; NTFS journals the rename itself
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # a directory we may write but not read
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (certain network mounts) refuse fsync on a directory
    finally:
        os.close(fd)
