"""The console logger of every plusultra run: Dagster's line format, one line per event.

Dagster's default console logger prints a failed step's whole stack trace to the terminal. A
user's bad input (a contract violation raised as ``dagster.Failure``) then reads as a crash, and
the ``plusultra`` CLI, which prints the cause in one line itself, shows it buried under 60 lines.
Here each event prints its first line only; the full message, stack trace included, stays in the
run's event log, which the UI shows (and ``dagster debug export`` keeps).
"""

from __future__ import annotations

import logging
import sys

from dagster import Field, String, logger

FORMAT = "%(asctime)s - dagster - %(levelname)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class FirstLineFormatter(logging.Formatter):
    """Dagster's format, cut to the message's first line (a note says more is in the event log)."""

    def format(self, record: logging.LogRecord) -> str:
        first, _, rest = super().format(record).partition("\n")
        return f"{first} (details in the run's event log)" if rest.strip() else first


@logger(config_schema={"log_level": Field(String, is_required=False, default_value="INFO"),
                       "name": Field(String, is_required=False, default_value="dagster")},
        description="Dagster's console format, one line per event (details stay in the event log).")
def console_logger(init_context) -> logging.Logger:
    config = init_context.logger_config
    log = logging.Logger(config["name"], level=config["log_level"].upper())  # not registered: one per run
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FirstLineFormatter(FORMAT, DATE_FORMAT))
    log.addHandler(handler)
    return log
