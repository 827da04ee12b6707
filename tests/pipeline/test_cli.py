"""The real ``plusultra`` command (a subprocess of this checkout) fails in one line: exit status
non-zero, one stderr line naming what was wrong and what exists, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from plusultra_core.data.store import ParquetStore
from plusultra_core.lineage import INFERENCE_FRAMES
from plusultra_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
DAYS = ("2018-01-02", "2018-01-03")


def plusultra(*argv, cwd, **popen):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSULTRA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "plusultra_pipeline.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def fails(*argv, cwd) -> str:
    proc = plusultra(*argv, cwd=cwd)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    for day in DAYS:
        ParquetStore(root).write(INFERENCE_FRAMES, {"day": day}, pd.DataFrame({"symbol": ["A"], "position": [0.0]}))
    return root


def test_lineage_of_a_bad_date_says_the_format_and_the_stored_days(store, tmp_path):
    err = fails("lineage", "2018/03/01", "--store", str(store), cwd=tmp_path)
    assert err == ("plusultra lineage: error: '2018/03/01' is neither a checkpoint file nor a day YYYY-MM-DD; "
                   "stored days: 2018-01-02, 2018-01-03")


def test_lineage_of_a_missing_checkpoint_says_not_found(store, tmp_path):
    err = fails("lineage", "nope.pt", "--store", str(store), cwd=tmp_path)
    assert err.startswith("plusultra lineage: error: checkpoint not found: nope.pt;") and "2018-01-02" in err


def test_lineage_of_a_day_without_a_frame_names_the_command_once(store, tmp_path):
    err = fails("lineage", "2018-03-01", "--store", str(store), cwd=tmp_path)
    assert err == "plusultra lineage: error: no inference frame for 2018-03-01; stored days: 2018-01-02, 2018-01-03"


def test_usage_and_input_errors_are_one_line(tmp_path):
    assert "required: target" in fails("lineage", cwd=tmp_path)
    assert "invalid choice: 'nope'" in fails("nope", cwd=tmp_path)
    assert "nope.pt" in fails("infer", "--checkpoint", "nope.pt", "--date", DAYS[0], cwd=tmp_path)
    assert "missing.sqlite" in fails("validate", "missing.sqlite", cwd=tmp_path)


def test_a_reader_that_stops_reading_ends_validate_quietly(small_synth_db_path, tmp_path):
    """``plusultra validate --json DB | head``: the reader is gone before the report is written."""
    proc = plusultra("validate", "--json", str(small_synth_db_path), cwd=tmp_path)
    proc.stdout.close()  # like `head` exiting: every write from now on hits a closed pipe
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_version(tmp_path):
    proc = plusultra("--version", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("plusultra 0.1.0 (python ") and "dagster" in out


def test_a_dagster_failure_on_a_cli_path_is_its_description_in_one_line(monkeypatch, capsys):
    from dagster import Failure

    from plusultra_pipeline.cli import validate_command

    def fold_overlaps(args):
        raise Failure(description="a checkpoint of cutoff 2018-02-01 was trained up to 2018-02-05,\n"
                                  "inside its evaluation period starting 2018-02-01")

    monkeypatch.setattr(validate_command, "_validate", fold_overlaps)
    assert main(["validate", "any.sqlite"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "plusultra validate: error: a checkpoint of cutoff 2018-02-01 was trained up to 2018-02-05, inside its "
        "evaluation period starting 2018-02-01"]
