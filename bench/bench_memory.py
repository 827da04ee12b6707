"""Memory benchmark: peak RSS of a full history build as the universe grows.

For each universe size (``n_symbols`` x ``n_days`` business days, the cached synthetic database
of `bench.bench_extract.database`), the pipeline's own entry point materialises the whole
history graph (``validated_bars`` -> ``feature_panel`` -> ``window_tensors``, every partition in
one single run, 32 hash shards, yearly periods, as `bench.bench_incremental`) from an empty
store on a temporary SQLite-backed instance (``dagster.instance_for_test()``) in a forked child
(`bench.common.measure`): the peak resident memory above the child's size at start is the run's
own. The stages work in chunks of whole shards (`plusultra_core.chunks`), so the peak should
stay roughly flat as symbols grow; what still grows with the universe is the cross-sectional
pass (close and volume of every symbol, their ``[days, symbols]`` matrices) and the per-chunk
rows when shards hold more symbols.

Goal: <= 2 GB at 500 symbols (reference scale), roughly flat from 100 to 2,000 symbols.

``python -m bench.bench_memory --symbols 100 500 2000`` (default), ``--days 5000``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.bench_incremental import BUCKETS, _settings
from bench.common import BenchResult, measure, print_results

SIZES = (100, 500, 2000)
GOAL_MB = 2048.0  # at reference scale (500 symbols)


def _full_build(db_source: Path, first_year: int) -> dict:
    """Materialise the whole history graph from an empty store; partitions and seconds."""
    from dagster import instance_for_test

    from plusultra_pipeline.assets.features import lookback_periods
    from plusultra_pipeline.definitions import build_definitions
    from plusultra_pipeline.runner import materialize_history

    with tempfile.TemporaryDirectory(prefix="plusultra-bench-mem-") as tmp:
        tmp = Path(tmp)
        db = tmp / "market.sqlite"
        shutil.copyfile(db_source, db)
        settings = _settings(db, tmp / "store", first_year)
        quiet = {"python_logs": {"python_log_level": "WARNING"}}
        (tmp / "dagster_home").mkdir()
        with instance_for_test(overrides=quiet, temp_dir=str(tmp / "dagster_home")) as instance:
            t0 = time.perf_counter()
            report = materialize_history(instance, build_definitions(settings), settings, lookback_periods(settings))
            return {"full_s": round(time.perf_counter() - t0, 1), "partitions": len(report.stale),
                    "runs": len(report.run_ids)}


def run(symbols: list[int] | tuple[int, ...] = SIZES, n_days: int = 5000, seed: int = 0) -> list[BenchResult]:
    """Peak RSS of a full history build per universe size, one row each."""
    import sqlite3

    import pandas as pd

    from bench.bench_extract import database
    from plusultra_core.data.contract import SERIES

    results = []
    for n_symbols in symbols:
        db = database(n_symbols, n_days, seed)  # built (once, cached) outside the measurement
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            first = conn.execute(f"SELECT MIN(timestamp) FROM {SERIES}").fetchone()[0]
        m = measure(_full_build, db, pd.Timestamp(first).year)
        results.append(BenchResult(
            "memory", f"full history build peak RSS ({n_symbols}x{n_days}, hash {BUCKETS}, yearly, sqlite instance)",
            round(m.peak_rss_mb, 1), None, None, "MB", goal=f"<= {GOAL_MB:.0f} MB at 500 symbols, flat",
            extra={"bars": n_symbols * n_days, **m.value}))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print_results(run(args.symbols, args.days, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
