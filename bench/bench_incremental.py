"""Incremental-day benchmark: one new trading day vs a full recompute of the history graph.

On a synthetic contract database (``n_symbols`` x ``n_days`` business days, cached under
``$PLUSULTRA_HOME/bench`` and copied to a temp dir because the bench appends to it), the
pipeline's own entry points run the history half of the Dagster graph (``validated_bars`` ->
``feature_panel`` -> ``window_tensors``) with hash sharding (32 buckets) and yearly periods:

1. full: ``runner.materialize_history`` from an empty store and a fresh instance;
2. no-op: the same call again with nothing changed (the fixed cost of asking "what is stale?");
3. new day: ``demo_db.append_trading_day`` adds one bar for every tradable symbol, then
   ``materialize_history`` rebuilds only the affected partitions (the last year of every shard).

Goal: new day <= 2% of the full recompute (>= 50x faster). The planning step (fingerprints of the
whole database + store sidecars) is timed on its own, and a second new day is run under
``cProfile`` to split the incremental time by package (dagster bookkeeping vs our code vs
pandas/duckdb/pyarrow I/O). Each instance kind runs in its own forked child (`bench.common.measure`):
``ephemeral`` (in-memory) and ``sqlite`` (``dagster.instance_for_test()``, a temp SQLite-backed
instance like the one users have).

``python -m bench.bench_incremental --symbols 100 --days 2000`` runs a reduced scale.
"""

from __future__ import annotations

import cProfile
import dataclasses
import pstats
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import BenchResult, measure, print_results, scale_parser

BUCKETS = 32
INSTANCE_KINDS = ("ephemeral", "sqlite")
# package of a profiled function -> the bucket it is reported under (first match wins)
PROFILE_BUCKETS = (("dagster", "dagster"), ("plusultra_core", "plusultra_core"),
                   ("plusultra_pipeline", "plusultra_pipeline"), ("pandas", "pandas"),
                   ("pyarrow", "pyarrow"), ("duckdb", "duckdb"), ("numpy", "numpy"),
                   ("sqlalchemy", "sqlalchemy (dagster storage)"), ("pandera", "pandera"),
                   ("sqlite3", "sqlite3"), ("grpc", "grpc"))


def _settings(db: Path, store: Path, first_year: int):
    """Project settings pointed at ``db``/``store``, hash-sharded, yearly periods from ``first_year``."""
    from plusultra_core.data.sharding import ShardingConfig
    from plusultra_pipeline.settings import HistoryConfig, load_settings

    base = load_settings(environ={})  # the project's pipeline.yaml, not the caller's env overrides
    return dataclasses.replace(base, database=str(db), store_root=str(store),
                               sharding=ShardingConfig("hash", BUCKETS),
                               history=HistoryConfig(period="year", start=str(first_year)))


def _partition_count(plans, period_order: list[str], shard_order: list[str]) -> int:
    """Asset partitions materialised by ``plans`` (box of periods x shards, times assets)."""
    ppos = {p: i for i, p in enumerate(period_order)}
    spos = {s: i for i, s in enumerate(shard_order)}
    total = 0
    for plan in plans:
        periods = ppos[plan.period_range[1]] - ppos[plan.period_range[0]] + 1
        shards = spos[plan.shard_range[1]] - spos[plan.shard_range[0]] + 1
        total += periods * shards * len(plan.assets)
    return total


def _bucket(filename: str, func: str) -> str:
    """Which package a profiled function belongs to; C built-ins by the type they belong to."""
    if filename == "~":  # a C function: '<method 'execute' of 'sqlite3.Cursor' objects>'
        for needle, name in PROFILE_BUCKETS:
            if needle in func:
                return f"{name} (C)"
        return "builtins (C)"
    path = filename.replace("\\", "/")
    for needle, name in PROFILE_BUCKETS:
        if f"/{needle}/" in path:
            return name
    return "other"


def _profile_by_package(profiler: cProfile.Profile) -> dict[str, float]:
    """Self time (tottime) in seconds per package bucket, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, func), (_, _, tottime, _, _) in pstats.Stats(profiler).stats.items():
        totals[_bucket(filename, func)] += tottime
    return dict(sorted(((k, round(v, 3)) for k, v in totals.items()), key=lambda kv: -kv[1]))


def _top_cumulative(profiler: cProfile.Profile, needle: str, n: int = 8) -> list[str]:
    """The ``n`` functions of files containing ``needle`` with the largest cumulative time."""
    stats = pstats.Stats(profiler)
    rows = [(ct, f"{Path(fn).name}:{line} {name}") for (fn, line, name), (_, _, _, ct, _) in stats.stats.items()
            if needle in fn]
    return [f"{label} {ct:.2f}s" for ct, label in sorted(rows, reverse=True)[:n]]


def _scenario(db_source: Path, kind: str, first_year: int, profile: bool) -> dict:
    """Full build, no-op, one new day (and a profiled second day) on one instance kind."""
    from dagster import DagsterInstance, instance_for_test

    from plusultra_core.data.demo_db import append_trading_day
    from plusultra_pipeline.assets.features import lookback_periods
    from plusultra_pipeline.constants import SYMBOLS_PARTITIONS
    from plusultra_pipeline.definitions import build_definitions
    from plusultra_pipeline.runner import history_period_keys, materialize_history, plan_history

    with tempfile.TemporaryDirectory(prefix="plusultra-bench-incr-") as tmp:
        tmp = Path(tmp)
        db = tmp / "market.sqlite"
        shutil.copyfile(db_source, db)  # the bench appends days: never touch the cached file
        settings = _settings(db, tmp / "store", first_year)
        lookback = lookback_periods(settings)
        t0 = time.perf_counter()
        defs = build_definitions(settings)
        defs_s = time.perf_counter() - t0
        # Dagster's console logger prints every event at DEBUG; time the pipeline, not the terminal
        quiet = {"python_logs": {"python_log_level": "WARNING"}}
        (tmp / "dagster_home").mkdir()
        ctx = instance_for_test(overrides=quiet, temp_dir=str(tmp / "dagster_home")) if kind == "sqlite" else None
        instance = ctx.__enter__() if ctx else DagsterInstance.ephemeral(settings=quiet)
        try:
            t0 = time.perf_counter()
            full = materialize_history(instance, defs, settings, lookback)
            full_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            noop = materialize_history(instance, defs, settings, lookback)
            noop_s = time.perf_counter() - t0
            new_day = append_trading_day(db)
            # partitions end at the data's last bar: definitions are rebuilt after it moves (as
            # the CLI does on every command); timed as part of the new day
            t0 = time.perf_counter()
            defs = build_definitions(settings)
            redefs_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            plan_history(instance, defs, settings, lookback)  # planning alone (read-only)
            plan_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            inc = materialize_history(instance, defs, settings, lookback)
            inc_s = time.perf_counter() - t0 + redefs_s
            period_order = history_period_keys(defs)
            shard_order = list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS))
            out = {
                "instance": kind, "defs_s": defs_s, "full_s": full_s, "noop_s": noop_s,
                "plan_s": plan_s, "redefs_s": redefs_s, "incremental_s": inc_s, "new_day": str(new_day.date()),
                "lookback_periods": lookback, "shards": len(shard_order),
                "full_runs": len(full.run_ids), "full_stale": len(full.stale),
                "full_partitions": _partition_count(full.plans, period_order, shard_order),
                "noop_runs": len(noop.run_ids),
                "incremental_runs": len(inc.run_ids), "incremental_stale": len(inc.stale),
                "incremental_partitions": _partition_count(inc.plans, period_order, shard_order),
                "incremental_plans": [f"{','.join(p.assets)} {p.period_range[0]}..{p.period_range[1]} "
                                      f"x {p.shard_range[0]}..{p.shard_range[1]}" for p in inc.plans],
            }
            if profile:
                append_trading_day(db)
                profiler = cProfile.Profile()
                t0 = time.perf_counter()
                profiler.enable()
                defs = build_definitions(settings)
                materialize_history(instance, defs, settings, lookback)
                profiler.disable()
                out["profiled_incremental_s"] = time.perf_counter() - t0
                out["self_time_by_package_s"] = _profile_by_package(profiler)
                out["top_plusultra_cumulative"] = _top_cumulative(profiler, "plusultra_")
                out["top_dagster_cumulative"] = _top_cumulative(profiler, "/dagster/", 5)
            return out
        finally:
            if ctx:
                ctx.__exit__(None, None, None)


def run(n_symbols: int = 500, n_days: int = 5000, seed: int = 0,
        instances: tuple[str, ...] = INSTANCE_KINDS, profile: bool = True) -> list[BenchResult]:
    """Full vs one-new-day materialisation of the history graph, per instance kind."""
    import pandas as pd

    from bench.bench_extract import database  # the shared, cached synthetic database
    from plusultra_core.errors import ConfigError

    unknown = set(instances) - set(INSTANCE_KINDS)
    if unknown:
        raise ConfigError(f"bench_incremental: unknown instance kind(s) {sorted(unknown)}; "
                          f"choose from {', '.join(INSTANCE_KINDS)}")
    db = database(n_symbols, n_days, seed)
    # synth_db's default start: the first business day of 2000 (read the DB, not the default)
    import sqlite3

    from plusultra_core.data.contract import SERIES

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        first = conn.execute(f"SELECT MIN(timestamp) FROM {SERIES}").fetchone()[0]
    first_year = pd.Timestamp(first).year
    scale = f"{n_symbols}x{n_days}, hash {BUCKETS}, yearly"
    results = []
    for kind in instances:
        m = measure(_scenario, db, kind, first_year, profile)
        v = m.value
        fraction = v["incremental_s"] / v["full_s"]
        extra = {k: (round(x, 3) if isinstance(x, float) else x) for k, x in v.items()}
        extra["peak_rss_mb"] = round(m.peak_rss_mb, 1)
        results.append(BenchResult(
            "incremental", f"one new day / full history recompute ({scale}, {kind} instance)",
            100.0 * fraction, None, None, "%", goal="<= 2%", extra=extra))
        results.append(BenchResult(
            "incremental", f"new-day materialisation seconds ({scale}, {kind} instance)",
            v["incremental_s"], v["full_s"], "full history recompute", "s", goal=">= 50x",
            extra={"full_partitions": v["full_partitions"], "full_runs": v["full_runs"],
                   "incremental_partitions": v["incremental_partitions"],
                   "incremental_runs": v["incremental_runs"], "noop_s": round(v["noop_s"], 3),
                   "plan_s": round(v["plan_s"], 3)}))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = scale_parser(__doc__, days=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instance", action="append", choices=INSTANCE_KINDS,
                        help="only this instance kind (repeatable; default: both)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled second new day")
    args = parser.parse_args(argv)
    results = run(args.symbols, args.days, args.seed, tuple(args.instance or INSTANCE_KINDS),
                  profile=not args.no_profile)
    print_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
