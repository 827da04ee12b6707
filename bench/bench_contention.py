"""Training on a busy machine: the demo's supervised model trained alone and beside a competing
CPU-bound process, in the same run, for each torch intra-op thread setting.

What it trains is what `make demo` trains: the `train` stage config the graph builds from
``configs/demo.yaml`` (`stage_config`), on the real demo database, for a fixed number of
batches (no early stopping), through `run_training` (Lightning, data loading included). The
competitor is one busy Python process per ``hogs`` (a pure CPU loop), started before and killed
after each timed run.

A fair share on a 2-core machine with one competitor is half the CPU: training should then take
at most about 2x its time alone. Intra-op threads that spin-wait for a core another process holds
make it far worse (seen: 7x). Reported per setting: seconds alone, seconds beside the competitor,
and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.common import BenchResult, measure, print_results

HOG = "while True: pass"


def _demo_database() -> Path:
    from plusultra_core.data.demo_db import build_demo_database

    root = Path(os.environ.get("PLUSULTRA_HOME", ".plusultra")) / "bench"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "demo.sqlite"
    if not path.exists():
        build_demo_database(path)
    return path


def _train(db: Path, threads: int | None, batches: int) -> dict:
    from plusultra_core.training.runner import run_training
    from plusultra_pipeline.settings import PROJECT_ROOT, load_settings
    from plusultra_pipeline.stage_config import RunOverrides, stage_config

    settings = load_settings(PROJECT_ROOT / "configs" / "demo.yaml", environ={})
    with tempfile.TemporaryDirectory(prefix="plusultra-bench-contention-") as out:
        cfg = stage_config("train", settings, RunOverrides(db_path=str(db), output_dir=out, progress_bar=False))
        cfg = replace(cfg, data=replace(cfg.data, train_end="2016-12-31", val_end="2017-12-31"),
                      trainer=replace(cfg.trainer, max_epochs=1, limit_train_batches=batches, limit_val_batches=2,
                                      early_stopping_patience=None, num_threads=threads, tensorboard=False))
        run_training(cfg)
    return {}


def _timed(db: Path, threads: int | None, batches: int, hogs: int) -> float:
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        return measure(_train, db, threads, batches).seconds
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run(batches: int = 60, hogs: int = 1, settings: tuple = (None, 1)) -> list[BenchResult]:
    """``settings``: torch intra-op thread counts to compare (None: torch's default, every core)."""
    import torch  # noqa: F401  (imported before forking, as the pipeline has it)

    db = _demo_database()
    _timed(db, 1, 4, 0)  # warm caches (DuckDB extension, page cache, imports in the parent)
    results = []
    for threads in settings:
        alone = _timed(db, threads, batches, 0)
        busy = _timed(db, threads, batches, hogs)
        label = f"threads={'default (' + str(os.cpu_count()) + ')' if threads is None else threads}"
        results.append(BenchResult("contention", f"demo training, {label}, beside {hogs} CPU-bound process(es)",
                                   busy, alone, "the same training alone", "s",
                                   goal=f"<= {1 + hogs:.0f}x alone (its CPU share)",
                                   extra={"alone_s": round(alone, 2), "busy_s": round(busy, 2),
                                          "slowdown": round(busy / alone, 2), "batches": batches}))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--hogs", type=int, default=1)
    args = parser.parse_args(argv)
    print_results(run(batches=args.batches, hogs=args.hogs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
