"""The real ``plusultra materialize`` survives kill -9 at any point.

Each test SIGKILLs a real subprocess at one point of its run (watched from outside: a file of the
instance or store appearing), runs ``materialize`` again, and compares the store with a clean
build (`store_contents`: the same files with the same content), then asks Dagster (a dry run)
whether anything is left to do.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.pipeline.cli_runs import materialize, ok
from tests.pipeline.store_contents import differences, store_contents

pytestmark = pytest.mark.slow


def _parquets(store: Path, asset: str) -> int:
    return sum(1 for _ in (store / asset).rglob("data.parquet")) if (store / asset).is_dir() else 0


# where to kill: a condition on the home directory, checked every 5 ms (an earlier point, the
# instance just created, is the concurrency tests' subject)
KILL_POINTS = {
    "first_bars_written": lambda home: _parquets(home / "store", "validated_bars") >= 1,
    "first_features_written": lambda home: _parquets(home / "store", "feature_panel") >= 1,
    "every_window_written": lambda home: _parquets(home / "store", "window_tensors") >= 18,
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_then_rerun_gives_the_clean_store(point, tmp_path, small_synth_db_path, clean):
    home, reached = tmp_path / "home", KILL_POINTS[point]
    proc = materialize(home, small_synth_db_path)
    deadline = time.monotonic() + 240
    while not reached(home):
        assert proc.poll() is None, f"the run ended before {point}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"{point} not reached in 240 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # a write torn by a kill leaves at most a temporary: the next run removes it before it starts
    torn = home / "store" / "validated_bars" / ".data.parquet.0123abcd.plusultra.tmp"
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_bytes(b"PAR1 torn")
    out = ok(materialize(home, small_synth_db_path))
    # (the kill itself may have torn a write too: the count is the planted one and any such)
    assert "temp file(s) left by an interrupted run" in out and not torn.exists()
    assert differences(store_contents(home / "store"), clean) == []
    # and Dagster agrees nothing is left to do
    assert ok(materialize(home, small_synth_db_path, "--dry-run")).startswith("0 history partitions")
