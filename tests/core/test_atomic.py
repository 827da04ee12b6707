"""Atomic writes: a failure or a SIGKILL leaves the old file or none, never part of one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plusultra_core import atomic

REPO = Path(__file__).resolve().parents[2]


def _names(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _raise(tmp):
    raise OSError("disk full")


def test_payloads_bytes_text_and_writer(tmp_path):
    assert atomic.write_file(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    atomic.write_file(tmp_path / "sub" / "b.txt", "h\u00e9")  # parent directories are created
    atomic.write_file(tmp_path / "c.txt", lambda tmp: Path(tmp).write_text("from a writer"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_bytes() == "h\u00e9".encode("utf-8")
    assert (tmp_path / "c.txt").read_text() == "from a writer"
    assert _names(tmp_path) == ["a.bin", "c.txt", "sub/b.txt"]
    with pytest.raises(TypeError, match="d.txt.*got int"):
        atomic.write_file(tmp_path / "d.txt", 3)
    assert _names(tmp_path) == ["a.bin", "c.txt", "sub/b.txt"]


@pytest.mark.parametrize("old", [b"old content", None])
def test_failing_writer_keeps_the_old_file_and_no_temp(tmp_path, old):
    target = tmp_path / "report.md"
    if old is not None:
        target.write_bytes(old)

    def half_then_fail(tmp):
        Path(tmp).write_bytes(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_file(target, half_then_fail)
    assert (target.read_bytes() if target.exists() else None) == old
    assert _names(tmp_path) == ([] if old is None else ["report.md"])


def test_group_write_keeps_every_old_file_when_one_writer_raises(tmp_path):
    (tmp_path / "a.csv").write_text("old a")
    (tmp_path / "c.json").write_text("old c")
    with pytest.raises(OSError, match="disk full"):
        atomic.write_files({tmp_path / "a.csv": "new a", tmp_path / "b.parquet": b"new b",
                            tmp_path / "c.json": _raise, tmp_path / "d.txt": "new d"})
    assert (tmp_path / "a.csv").read_text() == "old a" and (tmp_path / "c.json").read_text() == "old c"
    assert _names(tmp_path) == ["a.csv", "c.json"]
    written = atomic.write_files({tmp_path / "a.csv": "new a", tmp_path / "c.json": "new c"})
    assert written == [tmp_path / "a.csv", tmp_path / "c.json"]
    assert (tmp_path / "a.csv").read_text() == "new a" and (tmp_path / "c.json").read_text() == "new c"


def test_exclusive_refuses_an_existing_file(tmp_path):
    target = tmp_path / "market.sqlite"
    atomic.write_file(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError, match="market.sqlite"):
        atomic.write_file(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first" and _names(tmp_path) == ["market.sqlite"]


def test_mode_is_applied_before_the_umask(tmp_path):
    atomic.write_file(tmp_path / "secret.json", "{}", mode=0o600)
    atomic.write_file(tmp_path / "shared.json", "{}")
    assert (tmp_path / "secret.json").stat().st_mode & 0o777 == 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_concurrent_writers_to_one_path_both_succeed(tmp_path):
    target = tmp_path / "data.parquet"
    payloads = {name: name.encode() * 500_000 for name in ("A", "B")}
    both_started = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(payload):
        def write(tmp):
            both_started.wait(timeout=10)  # both temporaries exist at once: their names must differ
            with open(tmp, "wb") as fh:
                for i in range(0, len(payload), 100_000):
                    fh.write(payload[i:i + 100_000])
                    time.sleep(0.001)  # interleave the two writers
        return write

    def run(payload):
        try:
            atomic.write_file(target, writer(payload))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in payloads.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert target.read_bytes() in payloads.values()
    assert _names(tmp_path) == ["data.parquet"]


# The child writes half of a large payload, says so through ``ready``, then sleeps until killed.
_CHILD = """
import pathlib, sys, time
from plusultra_core import atomic

target, ready, group = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3] == "group"
half = b"n" * 4_000_000

def write(tmp):
    with open(tmp, "wb") as fh:
        fh.write(half)
        fh.flush()
        ready.write_text(str(tmp))
        time.sleep(120)
        fh.write(half)

if group:
    atomic.write_files({target.with_name("first.bin"): half + half, target: write})
else:
    atomic.write_file(target, write)
"""


@pytest.mark.parametrize("group", [False, True], ids=["one-file", "group"])
@pytest.mark.parametrize("old", [b"old content", None], ids=["replace", "create"])
def test_sigkill_mid_write_leaves_the_old_file_or_none(tmp_path, old, group):
    target, first, ready = tmp_path / "big.bin", tmp_path / "first.bin", tmp_path / "ready"
    if old is not None:
        target.write_bytes(old)
        first.write_bytes(old)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(target), str(ready), "group" if group else "one"],
                             env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"child never reached the write: {child.stderr.read().decode()[-2000:]}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    temp = Path(ready.read_text())
    assert temp.stat().st_size == 4_000_000  # killed mid-write: half of the payload is on disk ...
    assert (target.read_bytes() if target.exists() else None) == old  # ... but not under its name
    assert (first.read_bytes() if first.exists() else None) == old  # a group renames nothing early
    removed = atomic.remove_stale_temps(tmp_path)
    assert removed == (2 if group else 1) and not temp.exists()
    assert _names(tmp_path) == sorted(["ready"] + (["big.bin", "first.bin"] if old is not None else []))


def test_remove_stale_temps_removes_only_ours(tmp_path):
    ours = [tmp_path / f".data.parquet.{'a' * 32}{atomic.TEMP_SUFFIX}",
            tmp_path / "deep" / "er" / f".report.md.{'b' * 32}{atomic.TEMP_SUFFIX}"]
    theirs = [tmp_path / "notes.tmp", tmp_path / ".vim.swp.tmp", tmp_path / f"visible{atomic.TEMP_SUFFIX}",
              tmp_path / "deep" / "data.parquet"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.bin"
    outside.write_bytes(b"keep me")
    link = tmp_path / f".link{atomic.TEMP_SUFFIX}"
    link.symlink_to(outside)

    assert atomic.remove_stale_temps(tmp_path, older_than=3600) == 0  # too fresh: a writer may be live
    hour_ago = time.time() - 7200
    os.utime(ours[0], (hour_ago, hour_ago))
    assert atomic.remove_stale_temps(tmp_path, older_than=3600) == 1 and not ours[0].exists()
    assert atomic.remove_stale_temps(tmp_path) == 1
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs) and link.is_symlink() and outside.read_bytes() == b"keep me"
    assert atomic.remove_stale_temps(tmp_path / "missing") == 0
