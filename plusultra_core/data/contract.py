"""The SQLite market-data contract: the one place that spells table names, columns and DDL.

Tables
------
``assets``      one row per instrument or market-wide series (``symbol`` is the key).
``series``      daily (or intraday) OHLCV candles of tradable instruments, key (symbol, timestamp).
``indicators``  long-format values keyed by (timestamp, symbol, name): per-symbol indicators the
                user computed elsewhere, *and* market-wide external series (see below).
``trades``      executed trades (fills), key ``trade_id``.
``benchmarks``  benchmark closes (e.g. S&P 500), key (timestamp, benchmark).
``predictions`` written only by the optional, explicit inference export.

Market-wide external series (VIX, oil, CPI, Fama-French factors) fit the contract as assets with
``asset_class`` in ``MARKET_WIDE_CLASSES`` and ``tradable = 0``; their observations are rows of
``indicators`` with ``symbol`` = the series id and ``name`` = the field (``close``, ``value``,
``mkt_rf`` ...). ``timestamp`` is the *observation* date and ``assets.publication_lag_days`` says
how many calendar days later the value became public; loaders join them as-of
``timestamp + publication_lag_days`` so a monthly CPI print is never seen before its release.

Timestamps are ISO-8601 text, ``YYYY-MM-DD`` for daily bars (``YYYY-MM-DD HH:MM:SS`` allowed),
naive UTC. Prices are positive finite reals in the instrument's currency; volume is >= 0.

A timestamp that carries a UTC offset or zone (``2018-01-02 20:00-05:00``, ``...Z``, ``... UTC``)
is *rejected*, not converted: validation reports it as check ``naive_timestamp`` (table, column,
rowids) and every reader (`timestamp_sql`: the loader, ``date_range``, ``partition_fingerprints``)
treats its time as unknown, so no partition ever holds it. Converting would be a guess for daily
bars: ``20:00-05:00`` is the 2nd on the exchange's calendar but the 3rd in UTC, and dropping the
offset (what a plain cast does) silently shifts intraday bars. Write the exchange-local date for
daily bars, naive UTC for intraday ones.

No row may be dated later than `future_horizon` (check ``not_in_future``): such a bar belongs to
no partition yet (partitions end at the current period), so it would otherwise vanish unreported.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

ASSETS = "assets"
SERIES = "series"
INDICATORS = "indicators"
TRADES = "trades"
BENCHMARKS = "benchmarks"
PREDICTIONS = "predictions"

MARKET_WIDE_CLASSES = ("macro", "factor", "volatility", "commodity_index")
ASSET_CLASSES = ("equity", "index", "etf", "future", "fx", "crypto", "bond") + MARKET_WIDE_CLASSES
OHLC = ("open", "high", "low", "close")

# Timestamp text carrying a UTC offset or zone after a date (and time): ``Z``, ``+05:30``,
# ``-0500``, ``UTC``, ``America/New_York``. One pattern for DuckDB (RE2) and Python (`re`): so
# no ``\d`` / ``\s``, whose Unicode meaning differs between the two.
ZONED_TIMESTAMP = (r"^ *[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9:.,]*)? *"
                   r"(?:Z|z|[+-][0-9]{1,2}(?::?[0-9]{2}){0,2}|[A-Za-z]{2,}[A-Za-z0-9_/+-]*) *$")


@dataclass(frozen=True)
class Column:
    name: str
    sqltype: str  # TEXT | REAL | INTEGER
    nullable: bool
    description: str
    required: bool = True  # False: a database written before the column existed may lack it


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str
    required: bool = True  # must exist in every market database

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self) -> str:
        """CREATE TABLE statement (IF NOT EXISTS) with NOT NULL and PRIMARY KEY constraints."""
        cols = [f"{c.name} {c.sqltype}{'' if c.nullable else ' NOT NULL'}" for c in self.columns]
        cols.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        body = ",\n  ".join(cols)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {body}\n)"


TABLES: dict[str, TableSpec] = {
    ASSETS: TableSpec(ASSETS, (
        Column("symbol", "TEXT", False, "Instrument or series identifier (primary key)."),
        Column("name", "TEXT", False, "Human-readable name."),
        Column("asset_class", "TEXT", False, f"One of {', '.join(ASSET_CLASSES)}."),
        Column("sector", "TEXT", True, "Sector or group, used for sharding and cross-sectional features."),
        Column("currency", "TEXT", False, "ISO currency of prices."),
        Column("exchange", "TEXT", True, "Listing venue or data source."),
        Column("tradable", "INTEGER", False, "1 if the pipeline may hold a position in it, 0 for market-wide series."),
        Column("publication_lag_days", "INTEGER", False, "Calendar days between an observation's timestamp and its publication."),
    ), ("symbol",), "Instruments and market-wide series."),
    SERIES: TableSpec(SERIES, (
        Column("symbol", "TEXT", False, "Instrument (must exist in assets)."),
        Column("timestamp", "TEXT", False, "Bar date/time, ISO-8601, naive UTC."),
        Column("open", "REAL", False, "Opening price (> 0)."),
        Column("high", "REAL", False, "High price (>= open, close, low)."),
        Column("low", "REAL", False, "Low price (<= open, close, high; > 0)."),
        Column("close", "REAL", False, "Closing price (> 0)."),
        Column("volume", "REAL", False, "Traded volume (>= 0)."),
    ), ("symbol", "timestamp"), "OHLCV candles of tradable instruments."),
    INDICATORS: TableSpec(INDICATORS, (
        Column("timestamp", "TEXT", False, "Observation date/time, ISO-8601."),
        Column("symbol", "TEXT", False, "Instrument or market-wide series (must exist in assets)."),
        Column("name", "TEXT", False, "Indicator / field name."),
        Column("value", "REAL", False, "Observed value (finite)."),
    ), ("timestamp", "symbol", "name"), "Long-format indicators and external market-wide series."),
    TRADES: TableSpec(TRADES, (
        Column("trade_id", "INTEGER", False, "Unique fill id."),
        Column("timestamp", "TEXT", False, "Execution time, ISO-8601."),
        Column("symbol", "TEXT", False, "Instrument (must exist in assets)."),
        Column("side", "TEXT", False, "'buy' or 'sell'."),
        Column("quantity", "REAL", False, "Filled quantity (> 0)."),
        Column("price", "REAL", False, "Fill price (> 0)."),
        Column("fee", "REAL", False, "Fees paid (>= 0)."),
        Column("strategy", "TEXT", True, "Strategy or account tag."),
        Column("decision_timestamp", "TEXT", True, "Decision (inference day) the fill executes, ISO-8601; "
               "NULL: the last trading day before the fill.", required=False),
    ), ("trade_id",), "Executed trades.", required=False),
    BENCHMARKS: TableSpec(BENCHMARKS, (
        Column("timestamp", "TEXT", False, "Bar date, ISO-8601."),
        Column("benchmark", "TEXT", False, "Benchmark name, e.g. SP500."),
        Column("close", "REAL", False, "Benchmark level (> 0)."),
    ), ("timestamp", "benchmark"), "Benchmark levels for comparison.", required=False),
    PREDICTIONS: TableSpec(PREDICTIONS, (
        Column("timestamp", "TEXT", False, "Decision date (the bar the prediction was made after)."),
        Column("symbol", "TEXT", False, "Instrument."),
        Column("checkpoint_id", "TEXT", False, "Checkpoint that produced the row."),
        Column("p_sell", "REAL", False, "Probability of the sell action (first horizon step)."),
        Column("p_hold", "REAL", False, "Probability of the hold action."),
        Column("p_buy", "REAL", False, "Probability of the buy action."),
        Column("position", "REAL", False, "Proposed position in [-1, 1]."),
        Column("expected_return", "REAL", False, "Predicted next-period return."),
        Column("predicted_volatility", "REAL", True, "Predicted volatility of the next-period return."),
        Column("created_at", "TEXT", False, "When the row was written, ISO-8601 UTC."),
    ), ("timestamp", "symbol", "checkpoint_id"), "Inference export (written only when enabled).",
        required=False),
}

CONTRACT_TABLES = (ASSETS, SERIES, INDICATORS, TRADES, BENCHMARKS)

INDEXES = (
    f"CREATE INDEX IF NOT EXISTS idx_{INDICATORS}_symbol ON {INDICATORS} (symbol, timestamp)",
    f"CREATE INDEX IF NOT EXISTS idx_{TRADES}_symbol ON {TRADES} (symbol, timestamp)",
)


def create_schema(conn: sqlite3.Connection, *, include_predictions: bool = False) -> None:
    """Create every contract table (and indexes) in ``conn`` if missing."""
    names = CONTRACT_TABLES + ((PREDICTIONS,) if include_predictions else ())
    for name in names:
        conn.execute(TABLES[name].ddl())
    for stmt in INDEXES:
        conn.execute(stmt)


def zoned_sql(column: str) -> str:
    """SQL (DuckDB): TRUE where ``column``'s text carries a UTC offset or zone, else FALSE.

    A date alone is at most 10 characters and a zone needs a time after it, so daily bars skip
    the regular expression (it costs ~60 ms per million rows).
    """
    return f"coalesce(length({column}) > 10 AND regexp_matches({column}, '{ZONED_TIMESTAMP}'), FALSE)"


def timestamp_sql(column: str) -> str:
    """SQL (DuckDB): ``column`` parsed as a naive TIMESTAMP; NULL where unparseable or zoned.

    The one parser of timestamp text: a plain ``TRY_CAST`` would drop an offset (``+05:30``)
    without a word. Zoned rows get no time, so they are in no partition and validation names
    them (``naive_timestamp``).
    """
    return f"CASE WHEN {zoned_sql(column)} THEN NULL ELSE TRY_CAST({column} AS TIMESTAMP) END"


def future_horizon() -> _dt.datetime:
    """The earliest (naive) timestamp a row may not carry: midnight after tomorrow, UTC.

    One day of slack beyond today's UTC date: a bar's date is the exchange's local date, which
    east of UTC runs up to a day ahead of the UTC calendar.
    """
    today = _dt.datetime.now(_dt.timezone.utc).date()
    return _dt.datetime.combine(today + _dt.timedelta(days=2), _dt.time())


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing SQLite file read-only (the pipeline never writes the user's database).

    Raises `ContractError` naming the path when it does not exist or is not a SQLite database.
    """
    from plusultra_core.errors import ContractError

    path = Path(path)
    if not path.is_file():
        raise ContractError(f"market database not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(16)
    if magic != b"SQLite format 3\x00":
        raise ContractError(f"{path}: not a SQLite database (bad file header)")
    return sqlite3.connect(readonly_uri(path), uri=True)


def readonly_uri(path: str | Path) -> str:
    """``file:`` URI opening ``path`` read-only, every character of the path taken literally.

    Pasted into ``f"file:{path}?mode=ro"`` a ``#`` or ``?`` in the path would end it early and
    drop ``mode=ro`` (SQLite then creates an empty file at the cut-off name), and a ``%41`` would
    be decoded to ``A``; `Path.as_uri` percent-encodes them all.
    """
    return Path(path).resolve().as_uri() + "?mode=ro"


def mistyped_numbers(conn: sqlite3.Connection, table: str, limit: int = 5) -> list[tuple[str, int, object]]:
    """``(column, rowid, value)`` of up to ``limit`` rows whose REAL/INTEGER contract column holds
    text or a blob (SQLite stores whatever it is given; DuckDB's reader then refuses the whole
    table with one message that names neither the row nor, always, the column). One scan of the
    table; called only after a reader failed, so the fast path pays nothing."""
    numeric = [c.name for c in TABLES[table].columns if c.sqltype in ("REAL", "INTEGER")]
    if not numeric:
        return []
    where = " OR ".join(f"typeof({c}) IN ('text', 'blob')" for c in numeric)
    rows = conn.execute(f"SELECT rowid, {', '.join(numeric)} FROM {table} WHERE {where} LIMIT ?",
                        (limit,)).fetchall()
    return [(column, row[0], value) for row in rows
            for column, value in zip(numeric, row[1:]) if isinstance(value, (str, bytes))]


def describe_mistyped(table: str, found: list[tuple[str, int, object]]) -> str:
    """One line naming table, columns, rowids and values of `mistyped_numbers`."""
    cells = ", ".join(f"column '{c}' rowid {r} holds {v!r}" for c, r, v in found)
    return f"table '{table}': text where a number is expected: {cells}"


def first_mistyped(path: str | Path, tables) -> tuple[str, list[tuple[str, int, object]]] | None:
    """``(table, mistyped_numbers)`` of the first of ``tables`` holding text in a numeric column,
    read through a read-only connection of its own; ``None`` when none does."""
    conn = open_readonly(path)
    try:
        for table in tables:
            found = mistyped_numbers(conn, table)
            if found:
                return table, found
    finally:
        conn.close()
    return None


def missing_tables_and_columns(conn: sqlite3.Connection) -> list[str]:
    """Human-readable list of contract violations in the database's structure (empty if fine)."""
    problems = []
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    for name in CONTRACT_TABLES:
        spec = TABLES[name]
        if name not in existing:
            if spec.required:
                problems.append(f"table '{name}' is missing")
            continue
        cols = {r[1] for r in conn.execute(f"PRAGMA table_info({name})")}
        for col in spec.columns:
            if col.required and col.name not in cols:
                problems.append(f"table '{name}': column '{col.name}' is missing")
    return problems


def present_columns(conn, table: str, *, prefix: str = "") -> tuple[str, ...]:
    """The contract columns of ``table`` the database has, in contract order: every required one
    and each optional one (``Column.required`` False) that exists. ``conn`` is SQLite or DuckDB;
    ``prefix`` is DuckDB's attached-database name (``market.``)."""
    have = {r[1] for r in conn.execute(f"PRAGMA table_info('{prefix}{table}')").fetchall()}
    return tuple(c.name for c in TABLES[table].columns if c.required or c.name in have)
