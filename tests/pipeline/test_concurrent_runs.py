"""Concurrent first runs: two ``plusultra materialize`` on one fresh home serialise or one refuses
in one line; the instance stays usable and the store is the clean one. Concurrent first uses of
one fresh Dagster instance create its storage once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.pipeline.cli_runs import ROOT, finish, materialize, ok
from tests.pipeline.store_contents import differences, store_contents

BUSY = "is in use by another plusultra run (pid "
pytestmark = pytest.mark.slow


def test_two_first_runs_on_one_store_serialise_or_refuse(tmp_path, small_synth_db_path, clean):
    home = tmp_path / "home"
    first, second = materialize(home, small_synth_db_path), materialize(home, small_synth_db_path)
    results = [finish(first), finish(second)]
    assert any(code == 0 for code, _, _ in results), results
    for code, out, err in results:
        if code:
            assert code == 2 and BUSY in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert differences(store_contents(home / "store"), clean) == []
    assert ok(materialize(home, small_synth_db_path, "--dry-run")).startswith("0 history partitions")


INIT = ("import sys; from plusultra_pipeline.runner import project_instance; "
        "instance = project_instance(sys.argv[1]); print(len(instance.get_runs()))")


def test_concurrent_first_uses_of_a_fresh_instance_create_it_once(tmp_path):
    """Dagster creates its SQLite schema on first use; without the init lock two processes doing
    it at once leave two alembic heads or 'table ... already exists' now and then. Three processes,
    three fresh homes: every process succeeds and every instance is usable afterwards."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for trial in range(3):
        home = tmp_path / f"home{trial}"
        procs = [subprocess.Popen([sys.executable, "-c", INIT, str(home)], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and out.strip() == "0", err[-2000:]
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            assert instance.get_runs() == []
            instance.upgrade()  # one alembic head: a second head makes this raise
