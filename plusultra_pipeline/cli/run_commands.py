"""``plusultra materialize`` and ``plusultra demo``: run the Dagster graph without the UI.

Runs go to the project's persistent Dagster instance (``$DAGSTER_HOME``), so `make ui` shows the
same materialisations afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("materialize", help="materialise what is stale in the asset graph (single runs per partition range)")
    p.add_argument("--config", default=None, help="pipeline settings YAML (default: $PLUSULTRA_CONFIG or configs/pipeline.yaml)")
    p.add_argument("--db", default=None, help="SQLite market database (overrides the settings)")
    p.add_argument("--dry-run", action="store_true", help="print the planned runs without executing them")
    p.set_defaults(handler=_materialize)

    d = subparsers.add_parser("demo", help="build the demo database from real data if missing, then materialise the graph")
    d.add_argument("--db", default=".plusultra/demo.sqlite", help="where the demo database lives")
    d.add_argument("--config", default=None, help="pipeline settings YAML for the demo")
    d.set_defaults(handler=_demo)


def _load(args):
    from plusultra_pipeline.settings import load_settings

    env = dict(os.environ)
    if args.db:
        env["PLUSULTRA_DB"] = str(Path(args.db).resolve())
    return load_settings(args.config, environ=env)


def _run(settings, dry_run: bool = False) -> int:
    from plusultra_core.data.contract import open_readonly
    from plusultra_pipeline.assets.features import lookback_periods
    from plusultra_pipeline.definitions import build_definitions
    from plusultra_pipeline.runner import materialize_history, plan_history, project_instance

    open_readonly(settings.database_path).close()  # clear error before any Dagster work
    defs = build_definitions(settings)
    instance = project_instance()
    lookback = lookback_periods(settings)
    if dry_run:
        stale, plans = plan_history(instance, defs, settings, lookback)
        print(f"{len(stale)} stale history partitions -> {len(plans)} run(s)")
        for plan in plans:
            print(f"  {','.join(plan.assets)}  periods {plan.period_range[0]}..{plan.period_range[1]}  "
                  f"symbols {plan.shard_range[0]}..{plan.shard_range[1]}")
        return 0
    t0 = time.perf_counter()

    def show(plan):
        print(f"  run: {','.join(plan.assets)} periods {plan.period_range[0]}..{plan.period_range[1]} "
              f"symbols {plan.shard_range[0]}..{plan.shard_range[1]}", flush=True)

    report = materialize_history(instance, defs, settings, lookback, on_plan=show)
    if not report.plans:
        print("history: nothing changed in the database since the last materialisation; nothing to run")
    else:
        print(f"history: {len(report.stale)} stale partitions rebuilt in {len(report.run_ids)} run(s), "
              f"{time.perf_counter() - t0:.1f} s")
    print(f"store: {settings.store_path}   dagster instance: {os.environ['DAGSTER_HOME']}")
    return 0


def _materialize(args) -> int:
    return _run(_load(args), args.dry_run)


def _demo(args) -> int:
    from plusultra_core.data.demo_db import build_demo_database

    db = Path(args.db).resolve()
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        summary = build_demo_database(db)
        print(f"demo database built from real data at {db} in {time.perf_counter() - t0:.1f} s: {summary}")
    else:
        print(f"demo database: {db} (exists; delete it to rebuild)")
    code = _run(_load(args))
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to see the same materialisations.")
    return code
