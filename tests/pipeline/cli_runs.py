"""Run the real ``plusultra materialize`` as a subprocess of this checkout (kill and concurrency tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def materialize(home: Path, db: Path, *extra: str) -> subprocess.Popen:
    """``plusultra materialize`` with its store and Dagster instance under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUSULTRA_", "DAGSTER_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1",
               PLUSULTRA_HOME=str(home), PLUSULTRA_DB=str(db), DAGSTER_HOME=str(home / "dagster_home"))
    return subprocess.Popen([sys.executable, "-m", "plusultra_pipeline.cli", "materialize", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def ok(proc: subprocess.Popen) -> str:
    code, out, err = finish(proc)
    assert code == 0, err[-2000:]
    return out


def clean_store(home: Path, db: Path) -> dict:
    """`store_contents` of one uninterrupted first run under ``home``."""
    from tests.pipeline.store_contents import store_contents

    ok(materialize(home, db))
    contents = store_contents(home / "store")
    assert sum(k.endswith("data.parquet") for k in contents) == 54  # 3 assets x 6 symbols x 3 years
    return contents
