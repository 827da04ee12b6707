"""Exception types with messages that say what was wrong and where."""

from __future__ import annotations


class PlusUltraError(Exception):
    """Base class of every error plusultra raises on purpose."""


class ConfigError(PlusUltraError, ValueError):
    """A configuration file or mapping is invalid (unknown key, wrong type, missing file)."""


class ContractError(PlusUltraError):
    """A SQLite file does not follow the market-data contract (missing table/column, not SQLite)."""


class DataValidationError(PlusUltraError):
    """Data violates a schema check.

    Attributes carry the structured facts so callers (CLI, Dagster checks) can render them:
    ``table``, ``column``, ``check`` and ``failure_cases`` (a small DataFrame of the first
    offending rows, or ``None``).
    """

    def __init__(self, message: str, *, table: str, column: str | None = None,
                 check: str | None = None, failure_cases=None, report=None):
        super().__init__(message)
        self.table = table
        self.column = column
        self.check = check
        self.failure_cases = failure_cases
        self.report = report


class PartitionKeyError(PlusUltraError, ValueError):
    """A partition key (symbol shard, period, cutoff, day) is malformed or unknown."""


class CheckpointError(PlusUltraError):
    """A checkpoint file or its sidecar is missing, unreadable, or incompatible."""
