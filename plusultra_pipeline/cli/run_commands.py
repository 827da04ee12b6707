"""``plusultra materialize`` and ``plusultra demo``: run the Dagster graph without the UI.

Runs go to the project's persistent Dagster instance (``$DAGSTER_HOME``), so `make ui` shows the
same materialisations afterwards.
"""

from __future__ import annotations

import logging
import os
import warnings
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("materialize", help="materialise the history assets (validated_bars, feature_panel, window_tensors) "
                                                 "that Dagster calls missing or stale, as single runs per partition range; "
                                                 "`demo`/`study` run the whole graph")
    p.add_argument("--config", default=None, help="pipeline settings YAML (default: $PLUSULTRA_CONFIG or configs/pipeline.yaml)")
    p.add_argument("--db", default=None, help="SQLite market database (overrides the settings)")
    p.add_argument("--dry-run", action="store_true", help="observe the database and print the planned history runs "
                                                          "without executing them")
    p.add_argument("--processes", type=int, default=1,
                   help="cut each run's shards into this many runs at once, each step in its own process "
                        "(Dagster's multiprocess executor); pays off when compute, not process start-up, dominates")
    p.set_defaults(handler=_materialize)

    d = subparsers.add_parser("demo", help="build the demo database from real data if missing, then materialise the graph")
    d.add_argument("--db", default=None, help="where the demo database lives (default: the settings' database)")
    d.add_argument("--config", default="configs/demo.yaml", help="pipeline settings YAML for the demo")
    d.set_defaults(handler=_demo)

    s = subparsers.add_parser("study", help="the walk-forward research study: many folds and seeds on the real "
                                            "demo data, ending in the leaderboard and its verdict")
    s.add_argument("--db", default=None, help="where the demo database lives (default: the settings' database)")
    s.add_argument("--config", default="configs/study.yaml", help="pipeline settings YAML of the study")
    s.set_defaults(handler=_demo)


def _load(args):
    from plusultra_pipeline.settings import load_settings

    env = dict(os.environ)
    if args.db:
        env["PLUSULTRA_DB"] = str(Path(args.db).resolve())
    return load_settings(args.config, environ=env)


def _hold_store(settings, command: str):
    """The store's writer lock (a second writer refuses in one line), then the temp files of runs
    killed mid-write removed: with the lock held no other writer can own them."""
    from plusultra_core.atomic import remove_stale_temps
    from plusultra_pipeline.run_lock import hold_store

    lock = hold_store(settings.store_path, command)
    removed = remove_stale_temps(settings.store_path)
    if removed:
        print(f"removed {removed} temp file(s) left by an interrupted run", flush=True)
    return lock


def _prepare(settings):
    from plusultra_core.data.contract import open_readonly
    from plusultra_pipeline.assets.features import lookback_periods
    from plusultra_pipeline.definitions import build_definitions
    from plusultra_pipeline.runner import project_instance

    from plusultra_core.errors import ContractError
    from plusultra_pipeline.calendar import DataCalendar

    open_readonly(settings.database_path).close()  # clear error before any Dagster work
    calendar = DataCalendar.read(settings.database_path)
    if calendar.last_bar is None:
        raise ContractError(calendar.problem or f"{settings.database_path}: table 'series' has no bars of a "
                                                "tradable symbol: nothing to materialise")
    return build_definitions(settings, calendar), project_instance(), lookback_periods(settings)


def _materialize(args) -> int:
    from plusultra_pipeline.runner import materialize_history, plan_history

    settings = _load(args)
    lock = _hold_store(settings, "materialize")  # noqa: F841  (held until the command returns)
    defs, instance, lookback = _prepare(settings)
    if args.dry_run:
        stale, plans = plan_history(instance, defs, settings, lookback)
        print(f"{len(stale)} history partitions missing or stale in Dagster -> {len(plans)} run(s)")
        for plan in plans:
            print(f"  {','.join(plan.assets)}  periods {plan.period_range[0]}..{plan.period_range[1]}  "
                  f"symbols {plan.shard_range[0]}..{plan.shard_range[1]}")
        return 0
    t0 = time.perf_counter()
    if args.processes < 1:
        from plusultra_core.errors import ConfigError

        raise ConfigError(f"--processes must be >= 1, got {args.processes}")
    report = materialize_history(instance, defs, settings, lookback, processes=args.processes,
                                 on_plan=lambda p: print(f"  run: {','.join(p.assets)} periods "
                                                         f"{p.period_range[0]}..{p.period_range[1]} symbols "
                                                         f"{p.shard_range[0]}..{p.shard_range[1]}", flush=True))
    if not report.plans:
        print("history: Dagster reports every partition fresh (nothing changed in the database); nothing to run")
    else:
        print(f"history: {len(report.stale)} missing or stale partitions rebuilt in {len(report.run_ids)} run(s), "
              f"{time.perf_counter() - t0:.1f} s")
    print(f"store: {settings.store_path}   dagster instance: {os.environ['DAGSTER_HOME']}")
    return 0


def _demo(args) -> int:
    from rich.console import Console

    from plusultra_core.data.demo_db import build_demo_database
    from plusultra_pipeline.constants import INFERENCE_FRAMES, SUPERVISED_CHECKPOINT
    from plusultra_pipeline.runner import keys_between, materialize_graph, partition_keys

    # wide tables even when stdout is not a terminal (CI logs, `make demo | tee`)
    console = Console(width=None if sys.stdout.isatty() else 200)
    os.environ.setdefault("PLUSULTRA_RUN_LOG_LEVEL", "WARNING")  # the demo prints its own progress
    import pytorch_lightning  # noqa: F401  (it sets its loggers to INFO on import: quiet them after)

    warnings.filterwarnings("ignore", message=r".*treespec.*")  # a Lightning-internal deprecation

    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    settings = _load(args)
    # before the demo database is built: a second demo on this store refuses instead of racing
    lock = _hold_store(settings, args.command)  # noqa: F841  (held until the command returns)
    db = settings.database_path
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        with console.status("building the demo database from real market data (arch, pmdarima)"):
            summary = build_demo_database(db)
        console.print(f"demo database: {db} ({summary})")
    else:
        console.print(f"demo database: {db} (exists; delete it to rebuild)")
    defs, instance, lookback = _prepare(settings)
    cutoffs = keys_between(partition_keys(defs, SUPERVISED_CHECKPOINT), *settings.demo.cutoffs)
    days = (keys_between(partition_keys(defs, INFERENCE_FRAMES), *settings.demo.inference_days)
            if settings.demo.inference_days else [])

    def say(message):
        console.print(f"[{time.perf_counter() - t0:6.1f}s] {message}")

    with console.status("materialising the asset graph (Dagster, in-process)"):
        report = materialize_graph(instance, defs, settings, lookback, cutoffs, days, say=say)
    if not (report.history.run_ids or report.trained or report.evaluated or report.inferred):
        say("everything was already materialised and unchanged; nothing recomputed")
    _print_leaderboard(console, settings)
    _print_reconciliation(console, settings, args.config)
    console.print(f"done in {time.perf_counter() - t0:.1f} s. Store: {settings.store_path}  "
                  f"Dagster instance: {os.environ['DAGSTER_HOME']}")
    console.print("Open the UI with `make ui` (http://127.0.0.1:3000) to see the same materialisations, "
                  "their metadata, checks and lineage.")
    return 0


def _print_leaderboard(console, settings) -> None:
    from plusultra_core.evaluation.report import research_text
    from plusultra_pipeline.folds import leaderboard_view
    from plusultra_pipeline.layout import leaderboard_dir

    view = leaderboard_view(settings, settings.store_path, settings.database_path)
    if view is None:
        console.print("no evaluated folds yet")
        return
    board, folds, trials, summary = view.board, view.fold_dirs, view.trials, view.summary
    console.print(f"\nOut-of-sample leaderboard over {len(folds)} fold(s), net of costs "
                  f"({board.cost_bps:g} bps, {settings.evaluation.cost_source}):")
    console.print(summary.verdict, soft_wrap=True)
    console.print(research_text(board, summary, trials))
    console.print(f"report: {leaderboard_dir(settings.store_path)}")


def _print_reconciliation(console, settings, config: str) -> None:
    """One paragraph on the stored `trade_reconciliation` days (nothing when none is stored)."""
    from plusultra_core.data.store import ParquetStore
    from plusultra_core.reconciliation import Reconciliation
    from plusultra_pipeline.constants import TRADE_RECONCILIATION

    store = ParquetStore(settings.store_path)
    if not store.list_partitions(TRADE_RECONCILIATION):
        return
    table = store.read(TRADE_RECONCILIATION)
    s = Reconciliation(table=table, cost_bps=settings.evaluation.cost_bps).summary()
    console.print(f"\nExecuted trades vs proposed positions ({s['days']} decision days, {s['fills']} fills; "
                  "the demo's fill log is synthetic, from a trend-following desk, not the model): "
                  f"fill rate {s['fill_rate']:.1%}, realised cost {s['realised_cost_bps']:.2f} bps of traded "
                  f"notional vs {s['simulated_cost_bps']:g} bps simulated, implementation shortfall "
                  f"{s['shortfall_bps']:.1f} bps. Details: `plusultra reconcile --config {config}`",
                  soft_wrap=True)
