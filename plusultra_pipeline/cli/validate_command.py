"""``plusultra validate PATH``: check a market database against the data contract.

Prints the report (per table: rows, symbols, date range, and every violation with its first
offending rows). Exit status: 0 clean, 1 any structure problem or violation, 2 unusable input
(the file is missing or not a SQLite database). ``--json`` prints the report as JSON instead.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("validate", help="validate a SQLite market database against the data contract")
    p.add_argument("path", help="SQLite market database")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_validate)


def _validate(args) -> int:
    from plusultra_core.data.validation import validate_database

    report = validate_database(args.path)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report.to_text())
    if not report.usable:
        print(f"plusultra validate: error: {'; '.join(report.problems)}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1
