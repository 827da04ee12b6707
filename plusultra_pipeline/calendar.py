"""The data's own calendar: which days the market database has bars for.

Every partition range in the graph ends at the database's last bar and the inference days are
the days with bars (a holiday has none, so it is no partition). Definitions read the calendar
when they load; a database that gains days needs a code-location reload (the CLI builds fresh
definitions on every command; `market_db_sensor` says when a reload is due).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class DataCalendar:
    """Trading days of the database (sorted, tz-naive dates); empty when it cannot be read."""

    trading_days: pd.DatetimeIndex
    problem: str | None = None   # why the calendar is empty (missing file, broken contract)

    @classmethod
    def read(cls, database: str | Path) -> "DataCalendar":
        """The calendar of ``database``; an unreadable file gives an empty calendar (definitions
        must still load so `validate` and the UI can say what is wrong)."""
        from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
        from plusultra_core.errors import PlusUltraError

        if not Path(database).is_file():
            return cls(pd.DatetimeIndex([]), f"{database}: no such database file")
        try:
            with SQLiteMarketDataset(database) as dataset:
                return cls(dataset.trading_days())
        except PlusUltraError as exc:
            return cls(pd.DatetimeIndex([]), str(exc))

    @property
    def last_bar(self) -> pd.Timestamp | None:
        return self.trading_days[-1] if len(self.trading_days) else None

    def holidays(self, first: pd.Timestamp) -> list[pd.Timestamp]:
        """Weekdays from ``first`` to the last bar without any bar (exchange holidays)."""
        if self.last_bar is None or pd.Timestamp(first) > self.last_bar:
            return []
        weekdays = pd.bdate_range(pd.Timestamp(first), self.last_bar)
        return list(weekdays.difference(self.trading_days))
