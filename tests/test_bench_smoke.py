"""`bench.run_all` orchestration on tiny stage modules, and the incremental bench's bookkeeping.

The stage modules are real files in ``tmp_path`` run in real child processes: one succeeds, one
raises, one kills its own process, one hangs (with a forked worker) past the stage timeout. No stage bench is run at any scale here (too slow for tests).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from bench import run_all
from bench.bench_incremental import _bucket, _partition_count
from bench.run_all import Stage
from plusultra_pipeline.incremental import RunPlan

GOOD = '''
from bench.common import BenchResult

def run(n=1):
    return [BenchResult("good", f"rows ({n})", 2.0, 4.0, "peer", "s", goal=">= 2x", extra={"n": n})]
'''
BAD = '''
def run():
    raise ValueError("bad input in the stage")
'''
SLOW = '''
import os
import time

def run():
    pid = os.fork()
    if pid == 0:  # a forked worker, as bench.common.measure makes: killed with the stage
        time.sleep(120)
        os._exit(0)
    with open(os.environ["FX_WORKER_PID_FILE"], "w") as f:
        f.write(str(pid))
    time.sleep(120)
'''
CRASH = '''
import os

def run():
    os._exit(7)  # dies without a traceback or a result file
'''


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    for _ in range(20):
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        if state == "Z":
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def stage_modules(tmp_path, monkeypatch):
    pkg = tmp_path / "mods"
    pkg.mkdir()
    for name, text in (("fx_good", GOOD), ("fx_bad", BAD), ("fx_crash", CRASH), ("fx_slow", SLOW)):
        (pkg / f"{name}.py").write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(pkg))  # the child processes import them from here
    monkeypatch.setenv("FX_WORKER_PID_FILE", str(tmp_path / "worker.pid"))
    monkeypatch.setenv("PLUSULTRA_HOME", str(tmp_path / "home"))  # main() pins it absolute; undone after
    return pkg


def test_one_failing_stage_does_not_stop_the_others(stage_modules, tmp_path, capsys):
    stages = {"bad": Stage("fx_bad", {}, {}),
              "crash": Stage("fx_crash", {}, {}),
              "slow": Stage("fx_slow", {}, {}),
              # quick kwargs are used; a keyword run() does not take is dropped, not fatal
              "good": Stage("fx_good", {"n": 5}, {"n": 3, "not_a_parameter": 1})}
    out = tmp_path / "out"
    t0 = time.perf_counter()
    code = run_all.main(["--quick", "--out", str(out), "--stage-timeout", "4"], stages=stages)
    assert time.perf_counter() - t0 < 60  # the slow stage was cut off, not waited for
    assert code == 1
    stem = f"bench-{dt.date.today().isoformat()}-quick"
    markdown = (out / f"{stem}.md").read_text()
    payload = json.loads((out / f"{stem}.json").read_text())
    assert "| good | rows (3) | 2 s | 4 s (peer) | 2.00x | >= 2x |" in markdown
    status = {s["name"]: s for s in payload["stages"]}
    assert [s["name"] for s in payload["stages"]] == ["bad", "crash", "slow", "good"]  # ran in order, all of them
    assert status["good"]["status"] == "ok" and status["good"]["peak_rss_mb"] > 0
    assert status["bad"]["status"] == "failed" and status["bad"]["error"] == "exit status 1"
    assert status["crash"]["status"] == "failed" and status["crash"]["error"] == "exit status 7"
    assert status["slow"]["status"] == "failed" and status["slow"]["error"] == "timed out after 4 s (killed)"
    assert not _alive(int((tmp_path / "worker.pid").read_text()))
    assert payload["results"] == [{"stage": "good", "metric": "rows (3)", "ours": 2.0, "baseline": 4.0,
                                   "baseline_name": "peer", "unit": "s", "goal": ">= 2x",
                                   "extra": {"n": 3}, "ratio": 2.0}]
    for fact in ("cpu_count", "torch_threads", "torch", "duckdb", "pandas", "dagster"):
        assert fact in payload["machine"] and f"| {fact} |" in markdown
    captured = capsys.readouterr()
    assert "FAILED stages: bad, crash, slow" in captured.err
    assert not list(out.glob("*.part"))


def test_unknown_stage_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as exc:
        run_all.main(["--only", "features,nope"], stages={"features": Stage("fx_good", {}, {})})
    assert exc.value.code == 2
    assert "unknown stage(s) nope" in capsys.readouterr().err


def test_only_and_demo_select_stages():
    stages = {"a": Stage("m", {}, {}), "b": Stage("m", {}, {})}
    assert run_all.parse_args(["--only", "b", "--demo"], stages).names == ["b", "demo"]
    assert run_all.parse_args([], stages).names == ["a", "b"]


def test_every_registered_stage_module_has_the_run_keywords_it_is_given():
    """A renamed keyword in a stage bench would otherwise be dropped silently at bench time."""
    import importlib

    for name, stage in run_all.STAGES.items():
        module = importlib.import_module(stage.module)
        for kwargs in (stage.full, stage.quick):
            _, dropped = run_all.supported_kwargs(module.run, kwargs)
            assert dropped == [], f"{name}: {stage.module}.run does not take {dropped}"


def test_partition_count_is_box_area_times_assets():
    periods, shards = ["2000", "2001", "2002"], ["b0", "b1", "b2", "b3"]
    plans = [RunPlan(("validated_bars", "feature_panel", "window_tensors"), ("2000", "2001"), ("b1", "b3")),
             RunPlan(("feature_panel", "window_tensors"), ("2002", "2002"), ("b0", "b0"))]
    assert _partition_count(plans, periods, shards) == 2 * 3 * 3 + 1 * 1 * 2


def test_profile_buckets():
    assert _bucket("/x/site-packages/dagster/_core/events/__init__.py", "f") == "dagster"
    assert _bucket("/work/main/plusultra_core/history.py", "f") == "plusultra_core"
    assert _bucket("~", "<method 'execute' of 'sqlite3.Cursor' objects>") == "sqlite3 (C)"
    assert _bucket("~", "<built-in method builtins.len>") == "builtins (C)"
