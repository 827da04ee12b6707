"""The ``plusultra`` command line: every stage without the UI.

Each command module exposes ``register(subparsers)`` and imports heavy dependencies inside its
handlers, so ``plusultra --help`` stays fast. Errors that plusultra raises on purpose are printed as
one readable line and exit with status 2; validation failures exit with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from plusultra_core.errors import PlusUltraError

COMMAND_MODULES = (
    "plusultra_pipeline.cli.data_commands",
    "plusultra_pipeline.cli.validate_command",
    "plusultra_pipeline.cli.train_commands",
    "plusultra_pipeline.cli.infer_commands",
    "plusultra_pipeline.cli.run_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plusultra", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Dagster marks APIs we rely on (backfill policies, observable sources) as beta; say it once
    # in the docs, not on every command.
    warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=r".*is currently in preview.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PlusUltraError as exc:
        print(f"plusultra {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
