"""The ``plusultra`` command line: every stage without the UI.

Each command module exposes ``register(subparsers)`` and imports heavy dependencies inside its
handlers, so ``plusultra --help`` stays fast. Every failure is one line on stderr naming what was
wrong -- errors plusultra raises on purpose, a Dagster ``Failure`` from a run, a usage error --
with exit status 2 (validation failures exit with status 1); a reader that stops reading
(``| head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from plusultra_core.errors import PlusUltraError

COMMAND_MODULES = (
    "plusultra_pipeline.cli.data_commands",
    "plusultra_pipeline.cli.validate_command",
    "plusultra_pipeline.cli.train_commands",
    "plusultra_pipeline.cli.infer_commands",
    "plusultra_pipeline.cli.run_commands",
    "plusultra_pipeline.cli.serve_command",
    "plusultra_pipeline.cli.reconcile_command",
)
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE: what a command killed by a closed pipe reports


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line like every other failure (``--help`` has the usage)."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def version() -> str:
    """``plusultra <version>`` plus the versions that decide results (read without importing them)."""
    from importlib import metadata

    from plusultra_core import __version__

    def of(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    python = ".".join(map(str, sys.version_info[:3]))
    return f"plusultra {__version__} (python {python}, dagster {of('dagster')}, torch {of('torch')})"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="plusultra", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version())
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def fail(command: str, message, code: int = EXIT_ERROR) -> int:
    """Print ``plusultra <command>: error: <message>`` as one line on stderr; return ``code``."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    prefix = f"{command}: "
    while text.startswith(prefix):  # a message that names the command already: say it once
        text = text[len(prefix):]
    print(f"plusultra {command}: error: {text}", file=sys.stderr)
    return code


def _dagster_user_error(exc: BaseException) -> str | None:
    """The one-line message of a run's failure caused by bad input: a ``dagster.Failure``, or an
    error plusultra raised on purpose inside an op (Dagster wraps it in a step execution error);
    ``None`` for anything else (a bug keeps its traceback)."""
    # Dagster is imported by then if the error came from it: checking through sys.modules keeps the
    # commands that never touch Dagster from importing it
    dagster = sys.modules.get("dagster")
    if dagster is None:
        return None
    if isinstance(exc, dagster.Failure):
        return exc.description or str(exc)
    cause = getattr(exc, "user_exception", None)
    if isinstance(exc, dagster.DagsterUserCodeExecutionError) and isinstance(cause, (PlusUltraError, dagster.Failure)):
        return _dagster_user_error(cause) or str(cause)
    return None


def main(argv: list[str] | None = None) -> int:
    # Dagster marks APIs we rely on (backfill policies, observable sources) as beta; say it once
    # in the docs, not on every command.
    warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=r".*is currently in preview.*")
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's exit flush
        return code
    except BrokenPipeError:
        # the reader stopped reading (`| head`): nothing to report; later flushes go to devnull
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except PlusUltraError as exc:
        return fail(args.command, exc)
    except KeyboardInterrupt:
        return fail(args.command, "interrupted", 130)
    except Exception as exc:
        message = _dagster_user_error(exc)
        if message is not None:
            return fail(args.command, message)
        raise
