"""`make bench`: every stage benchmark in its own process, one combined report with ratios and goals.

``python -m bench.run_all [--quick] [--only extract,features,...] [--out bench/results] [--demo]``

Each stage (`STAGES`) runs ``<module>.run(**kwargs)`` in a fresh Python process, so its peak
memory and imports are its own and a crash (even a segfault) fails only that stage: the error is
printed, the stage is marked failed, the next stage runs, and the exit status is 1 at the end.
The synthetic reference database (500 symbols x 5000 business days, ``seed=0``) is built once in
``$PLUSULTRA_HOME/bench`` (default ``.plusultra/bench``) by `bench.bench_extract.database` and
reused by every stage and run that reads a database (extract, incremental). ``--quick`` runs
every stage at reduced sizes (a smoke run of a few minutes). ``--demo`` also times
``plusultra demo`` in a subprocess with a temporary ``PLUSULTRA_HOME``/``DAGSTER_HOME`` (a cold
store, database build included, as on a first ``make demo``).

The report (machine facts, per-stage status, the results table, each row's details) is printed
and written to ``<out>/bench-<date>.md`` and ``.json`` (``bench-<date>-quick.*`` for quick runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import inspect
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult, format_results
from plusultra_core import atomic

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"n_symbols": 500, "n_days": 5000, "seed": 0}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage bench: ``module.run(**full)`` normally, ``module.run(**quick)`` with ``--quick``."""

    module: str
    full: dict
    quick: dict
    uses_database: bool = False  # reads the cached synthetic database (built once, up front)


STAGES: dict[str, Stage] = {
    "extract": Stage("bench.bench_extract", {**REFERENCE}, {"n_symbols": 50, "n_days": 1000, "seed": 0},
                     uses_database=True),
    "features": Stage("bench.bench_features", {"n_symbols": 500, "n_days": 5000},
                      {"n_symbols": 50, "n_days": 1000}),
    "windows": Stage("bench.bench_windows", {"n_symbols": 500, "n_days": 5000},
                     {"n_symbols": 50, "n_days": 1000, "n_features": 16, "context": 64, "peer_symbols": 10,
                      "n_batches": 20, "peer_batches": 5}),
    "models": Stage("bench.bench_models", {}, {"quick": True, "experts": [4]}),
    # one day for every symbol of a 700-day history (context 128 + a 200-day feature lookback)
    "inference": Stage("bench.bench_inference", {"n_symbols": 500, "n_days": 700},
                       {"n_symbols": 50, "n_days": 700}),
    # `plusultra serve` over HTTP: one-symbol and all-symbol days, beside the server's forward time
    "serving": Stage("bench.bench_serving", {"n_symbols": 500, "n_days": 700},
                     {"n_symbols": 50, "n_days": 700, "requests_1": 20, "requests_all": 3}),
    "incremental": Stage("bench.bench_incremental", {**REFERENCE},
                         {"n_symbols": 30, "n_days": 600, "seed": 0, "instances": ["ephemeral"],
                          "profile": False}, uses_database=True),
    # peak RSS of a full history build as the universe grows (each size's database cached)
    "memory": Stage("bench.bench_memory", {"symbols": [100, 500, 2000], "n_days": 5000, "seed": 0},
                    {"symbols": [20, 40], "n_days": 600, "seed": 0}),
    # the demo's training alone and beside a CPU-bound competitor, per torch thread setting
    "contention": Stage("bench.bench_contention", {"batches": 60, "hogs": 1}, {"batches": 6, "hogs": 1}),
}
DEMO = "demo"  # not a module stage: `--demo` times the `plusultra demo` command


@dataclasses.dataclass
class StageOutcome:
    name: str
    status: str              # ok | failed | skipped
    seconds: float = 0.0
    peak_rss_mb: float | None = None  # the stage process (and its waited-for children)
    error: str = ""
    results: list[BenchResult] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Child side: import one bench module and run it
# ---------------------------------------------------------------------------------------------

def supported_kwargs(fn, kwargs: dict) -> tuple[dict, list[str]]:
    """``kwargs`` that ``fn`` accepts, and the names it does not (a bench's signature changed)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs), []
    return {k: v for k, v in kwargs.items() if k in params}, [k for k in kwargs if k not in params]


def _jsonable(value):
    """numpy scalars, paths and tuples as plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def _child(module_name: str, kwargs_json: str, result_file: str) -> int:
    module = importlib.import_module(module_name)
    kwargs, dropped = supported_kwargs(module.run, json.loads(kwargs_json))
    if dropped:
        print(f"[bench] {module_name}.run does not take {', '.join(dropped)}; running without them",
              file=sys.stderr, flush=True)
    results = module.run(**kwargs)
    payload = [dataclasses.asdict(r) for r in results]
    atomic.write_file(result_file, json.dumps(payload, default=_jsonable))  # the parent never reads half a file
    return 0


# ---------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------

def _run_process(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
                 capture: Path | None = None, timeout: float | None = None) -> tuple[int, float, float, str]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS MB of it and its children, output).

    The child leads its own process group, so a stage that overruns ``timeout`` (or an
    interrupted bench) is killed with every process it forked. ``capture`` is a file that
    receives stdout+stderr; otherwise output goes to the terminal. Exit code -9: timed out.
    """
    t0 = time.perf_counter()
    out = open(capture, "w") if capture else None
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if out else None,
                                start_new_session=True)
        try:
            while True:
                # wait4, not Popen.wait: it returns this child's own rusage (RUSAGE_CHILDREN
                # would be the maximum over every stage run so far)
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if timeout is not None and time.perf_counter() - t0 > timeout:
                    _kill_group(proc.pid)
                time.sleep(0.2)
        except BaseException:
            _kill_group(proc.pid)
            raise
    finally:
        if out:
            out.close()
    code = proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    return code, seconds, usage.ru_maxrss / 1024.0, Path(capture).read_text() if capture else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_stage(name: str, stage: Stage, quick: bool, workdir: Path, timeout: float | None = None) -> StageOutcome:
    """Run one stage in a fresh process; never raises for a failing stage."""
    kwargs = stage.quick if quick else stage.full
    result_file = workdir / f"{name}.json"
    cmd = [sys.executable, "-m", "bench.run_all", "--child", stage.module,
           "--child-kwargs", json.dumps(kwargs), "--child-result", str(result_file)]
    print(f"\n=== {name}: {stage.module}.run({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})",
          flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}
    code, seconds, rss, _ = _run_process(cmd, env=env, cwd=PROJECT_ROOT, timeout=timeout)
    if code != 0 or not result_file.exists():
        error = (f"timed out after {timeout:.0f} s (killed)" if code == -signal.SIGKILL and timeout
                 and seconds > timeout else f"exit status {code}" + ("" if code else " but no results were written"))
        print(f"=== {name}: FAILED ({error}; its traceback is above)", flush=True)
        return StageOutcome(name, "failed", seconds, rss, error)
    rows = [BenchResult(**r) for r in json.loads(result_file.read_text())]
    print(f"=== {name}: ok in {seconds:.1f} s", flush=True)
    return StageOutcome(name, "ok", seconds, rss, results=rows)


def _plusultra_command() -> list[str]:
    script = Path(sys.executable).parent / "plusultra"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from plusultra_pipeline.cli import main; sys.exit(main())"]


def run_demo(timeout: float | None = None) -> StageOutcome:
    """Wall time of ``plusultra demo`` with a temporary PLUSULTRA_HOME and DAGSTER_HOME (as `make demo`)."""
    print("\n=== demo: plusultra demo (temporary PLUSULTRA_HOME/DAGSTER_HOME)", flush=True)
    with tempfile.TemporaryDirectory(prefix="plusultra-bench-demo-") as home:
        env = {**os.environ, "PLUSULTRA_HOME": home, "DAGSTER_HOME": str(Path(home) / "dagster_home")}
        env.pop("PLUSULTRA_DB", None)
        env.pop("PLUSULTRA_CONFIG", None)
        Path(env["DAGSTER_HOME"]).mkdir()
        cmd = [*_plusultra_command(), "demo", "--db", str(Path(home) / "demo.sqlite"),
               "--config", str(PROJECT_ROOT / "configs" / "demo.yaml")]
        code, seconds, rss, output = _run_process(cmd, env=env, cwd=PROJECT_ROOT,
                                                  capture=Path(home) / "demo.log", timeout=timeout)
    print(output[-4000:], flush=True)
    if code != 0:
        tail = " | ".join(output.strip().splitlines()[-3:])
        why = (f"timed out after {timeout:.0f} s (killed)" if code == -signal.SIGKILL and timeout
               and seconds > timeout else f"exit status {code}")
        return StageOutcome(DEMO, "failed", seconds, rss, f"{why}: {tail}")
    extra = {"peak_rss_mb": round(rss, 1)}
    built = re.search(r"demo database built .* in ([0-9.]+) s", output)
    if built:
        extra["demo_db_build_s"] = float(built.group(1))
    # the demo prints "[  12.3s] <phase>: ..." as each phase starts: keep them as the time split
    phases = re.findall(r"^\[\s*([0-9.]+)s\] (.+)$", output, flags=re.M)
    if phases:
        extra["phases"] = [f"{float(t):.1f}s {text.strip()}" for t, text in phases]
    history = re.search(r"history: (\d+) stale partitions rebuilt in (\d+) run\(s\), ([0-9.]+) s", output)
    if history:
        extra.update(history_partitions=int(history.group(1)), history_runs=int(history.group(2)),
                     history_s=float(history.group(3)))
    row = BenchResult(DEMO, "plusultra demo wall seconds (cold store, DB build included)", seconds,
                      None, None, "s", extra=extra)
    return StageOutcome(DEMO, "ok", seconds, rss, results=[row])


def machine_facts() -> dict:
    """CPU, threads and library versions, so a report says what it was measured on."""
    from importlib.metadata import PackageNotFoundError, version

    facts = {"date": dt.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
             "platform": platform.platform(), "cpu_count": os.cpu_count(),
             "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        facts["cpu_model"] = model
    except (OSError, StopIteration):
        pass
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            facts[var] = os.environ[var]
    for pkg in ("torch", "duckdb", "pandas", "dagster", "numpy", "pyarrow", "pandera"):
        try:
            facts[pkg] = version(pkg)
        except PackageNotFoundError:
            facts[pkg] = "not installed"
    try:  # in a child: torch's import would otherwise stay in this process for every stage
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                             capture_output=True, text=True, timeout=120)
        facts["torch_threads"] = int(out.stdout.strip()) if out.returncode == 0 else "unavailable"
    except (subprocess.TimeoutExpired, ValueError):
        facts["torch_threads"] = "unavailable"
    return facts


def render(outcomes: list[StageOutcome], facts: dict, quick: bool, notes: list[str]) -> str:
    """The Markdown report."""
    lines = [f"# plusultra bench {facts['date'][:10]}{' (quick)' if quick else ''}", "",
             "## Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    lines += ["", "## Stages", "", "| stage | status | seconds | peak RSS MB | error |", "|---|---|---|---|---|"]
    for o in outcomes:
        rss = f"{o.peak_rss_mb:.0f}" if o.peak_rss_mb is not None else "-"
        lines.append(f"| {o.name} | {o.status} | {o.seconds:.1f} | {rss} | {o.error or ''} |")
    results = [r for o in outcomes for r in o.results]
    lines += ["", "## Results", "", format_results(results) if results else "(no results)", ""]
    details = [f"- {r.stage} / {r.metric}: {json.dumps(r.extra, default=_jsonable)}" for r in results if r.extra]
    if details:
        lines += ["## Details", "", *details, ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def write_report(out_dir: Path, stem: str, markdown: str, payload: dict) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` atomically, both or neither (`plusultra_core.atomic`)."""
    md, js = atomic.write_files({out_dir / f"{stem}.md": markdown,
                                 out_dir / f"{stem}.json": json.dumps(payload, indent=2, default=_jsonable)})
    return md, js


def _prepare_database(names: list[str], stages: dict[str, Stage], quick: bool) -> list[str]:
    """Build the cached synthetic database(s) the selected stages read, once, before timing them."""
    notes = []
    chosen = [s.quick if quick else s.full for n, s in stages.items() if n in names and s.uses_database]
    scales = sorted({(kw["n_symbols"], kw["n_days"], kw.get("seed", 0)) for kw in chosen})
    for n_symbols, n_days, seed in scales:
        from bench.bench_extract import database

        t0 = time.perf_counter()
        path = database(n_symbols, n_days, seed)
        notes.append(f"synthetic database {n_symbols}x{n_days} seed {seed}: {path} "
                     f"(ready in {time.perf_counter() - t0:.1f} s; cached across runs)")
        print(notes[-1], flush=True)
    return notes


def parse_args(argv: list[str] | None, stages: dict[str, Stage]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a smoke run")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated stages to run (of {', '.join([*stages, DEMO])})")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results"), help="report directory")
    parser.add_argument("--demo", action="store_true", help="also time `plusultra demo` (cold temp home)")
    parser.add_argument("--stage-timeout", type=float, default=None,
                        help="kill a stage after this many seconds and mark it failed "
                             "(default: 600 with --quick, 7200 otherwise)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-kwargs", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    known = [*stages, DEMO]
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            parser.error(f"--only: unknown stage(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(known)}")
    else:
        names = list(stages)
    if args.demo and DEMO not in names:
        names.append(DEMO)
    args.names = names
    return args


def main(argv: list[str] | None = None, stages: dict[str, Stage] | None = None) -> int:
    """Run the selected stages; 0 when all succeeded, 1 when any failed."""
    stages = STAGES if stages is None else stages
    args = parse_args(argv, stages)
    if args.child:
        return _child(args.child, args.child_kwargs, args.child_result)
    # one absolute cache/home for this process and every stage process, whatever the cwd
    os.environ["PLUSULTRA_HOME"] = str(Path(os.environ.get("PLUSULTRA_HOME") or PROJECT_ROOT / ".plusultra").resolve())
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()), flush=True)
    outcomes: list[StageOutcome] = []
    notes: list[str] = []
    try:
        notes += _prepare_database(args.names, stages, args.quick)
    except Exception as exc:  # noqa: BLE001 - report it; the stages that need it will fail on their own
        notes.append(f"building the synthetic database failed: {type(exc).__name__}: {exc}")
        print(notes[-1], file=sys.stderr, flush=True)
    timeout = args.stage_timeout or (600.0 if args.quick else 7200.0)
    with tempfile.TemporaryDirectory(prefix="plusultra-bench-") as tmp:
        for name in args.names:
            outcome = (run_demo(args.stage_timeout or 7200.0) if name == DEMO
                       else run_stage(name, stages[name], args.quick, Path(tmp), timeout))
            outcomes.append(outcome)
    markdown = render(outcomes, facts, args.quick, notes)
    print("\n" + markdown)
    stem = f"bench-{facts['date'][:10]}" + ("-quick" if args.quick else "")
    payload = {"quick": args.quick, "machine": facts, "notes": notes,
               "stages": [{k: v for k, v in dataclasses.asdict(o).items() if k != "results"} for o in outcomes],
               "results": [dataclasses.asdict(r) | {"ratio": r.ratio} for o in outcomes for r in o.results]}
    md_path, json_path = write_report(Path(args.out), stem, markdown, payload)
    failed = [o.name for o in outcomes if o.status != "ok"]
    print(f"\nreport: {md_path} and {json_path}")
    if failed:
        print(f"FAILED stages: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
