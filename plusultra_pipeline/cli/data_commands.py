"""``plusultra demo-db`` and ``plusultra synth-db``: write a market database to try the pipeline on.

``demo-db`` builds the real-data demo database (arch + pmdarima datasets, no network);
``synth-db`` a seeded synthetic one of any size. Both write atomically and refuse to replace an
existing file unless ``--force`` is given; a bad argument is a one-line error with exit status 2
and nothing written.
"""

from __future__ import annotations


def register(subparsers) -> None:
    d = subparsers.add_parser("demo-db", help="build the demo market database from real packaged data")
    d.add_argument("path", help="SQLite file to create")
    d.add_argument("--force", action="store_true", help="replace the file if it exists")
    d.set_defaults(handler=_demo_db)

    s = subparsers.add_parser("synth-db", help="build a seeded synthetic market database")
    s.add_argument("path", help="SQLite file to create")
    s.add_argument("--symbols", type=int, required=True, help="number of tradable symbols (> 0)")
    s.add_argument("--days", type=int, required=True, help="number of business days (>= 2)")
    s.add_argument("--seed", type=int, required=True, help="random seed (>= 0); same seed, same file content")
    s.add_argument("--start", default="2000-01-03", help="first business day (default: %(default)s)")
    s.add_argument("--sectors", type=int, default=10, help="number of sectors (default: %(default)s)")
    s.add_argument("--force", action="store_true", help="replace the file if it exists")
    s.set_defaults(handler=_synth_db)


def _demo_db(args) -> int:
    from plusultra_core.data.demo_db import build_demo_database

    print(build_demo_database(args.path, overwrite=args.force).to_text())
    return 0


def _synth_db(args) -> int:
    from plusultra_core.data.synth_db import build_synthetic_database

    summary = build_synthetic_database(args.path, n_symbols=args.symbols, n_days=args.days, seed=args.seed,
                                       start=args.start, n_sectors=args.sectors, overwrite=args.force)
    print(summary.to_text())
    return 0
