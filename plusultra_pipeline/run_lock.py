"""One writer per store, one initialiser per Dagster instance.

Two ``plusultra materialize``/``demo``/``study`` processes on one store would interleave writes
to the same partitions and, on a fresh ``$DAGSTER_HOME``, race to create Dagster's SQLite schema
(two alembic heads, "table secondary_indexes already exists"). Both are prevented with POSIX
``flock`` locks, which the kernel releases when the holder exits for any reason, kill -9
included, so a crashed run never leaves a stale lock behind:

- `hold_store` takes ``<store>/.plusultra.lock`` without waiting: a second writer refuses at
  once with one line naming the holder (its pid, command and start time) instead of queueing
  behind a run that may take an hour.
- `instance_init_lock` serialises the creation and migration of the Dagster instance's storage
  (``<DAGSTER_HOME>/.plusultra-init.lock``); it is held for seconds, so later comers wait.

Runs launched from the UI (``dagster dev``'s run launcher) do not take these locks; Dagster's own
run queue (``deploy/dagster.yaml``) is the tool there.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from plusultra_core.errors import PlusUltraError

STORE_LOCK = ".plusultra.lock"
INIT_LOCK = ".plusultra-init.lock"


class StoreBusyError(PlusUltraError):
    """Another plusultra process is writing to the same store."""


class StoreLock:
    """An exclusive hold on a store; released by `release`, by garbage collection or at exit."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "StoreLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()


def hold_store(store: str | os.PathLike, command: str) -> StoreLock:
    """Take the store's writer lock for ``plusultra <command>`` or raise `StoreBusyError` at once."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    path = store / STORE_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "a process that has not said who it is"
        os.close(fd)
        raise StoreBusyError(f"store {store} is in use by another plusultra run ({holder}); "
                             f"wait for it to finish or stop it, then run again") from None
    # who holds it, for the message a second writer prints (written after the lock is ours)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, `plusultra {command}`, since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
    return StoreLock(path, fd)


@contextmanager
def instance_init_lock(home: str | os.PathLike) -> Iterator[None]:
    """Hold ``<home>/.plusultra-init.lock`` (waiting for it) while the instance is created."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / INIT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
