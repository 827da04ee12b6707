"""Pandera schemas: one ``DataFrameModel`` per contract table and for the validated panel.

These models are *the* definition of what valid data is. Every check has a stable name
(``greater_than(0)``, ``finite``, ``high_ge_open_close`` ...) and every field a ``description=``
taken from `contract.TABLES`, so the same words show up in error messages, the CLI report and
the Dagster UI.

Two engines run the same checks (see `validation` for why):

* pandera itself, on a pandas frame (``Model.validate(df, lazy=True)``) — small tables, stage
  frames, notebooks, and the benchmark baseline;
* the array engine, over the big tables (``series``, ``indicators``) while they are extracted:
  the rows are fetched once as numpy arrays and pandera's own check objects run on them; the
  few checks on text columns (nullability, ``iso_timestamp``, ``naive_timestamp``,
  ``not_in_future``) have an *array twin* in `ARRAY_TWINS`, next to the checks they mirror. A
  test asserts that every check of a big-table schema is runnable there, and parity tests
  assert that both engines flag the same (column, check) pairs.

Row-level dataframe checks are vectorised (``element_wise=False``): they see whole columns as
numpy arrays, never one row at a time.

Columns of the raw tables keep their SQLite types (timestamps are ISO-8601 text); the stage
schema describes the validated panel indexed by ``(timestamp, symbol)``. Later stages (features,
window frames) share its index, checked by `plusultra_core.data.panel_index` without pandera.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Index, Series

from plusultra_core.data import contract
from plusultra_core.data.contract import ASSETS, BENCHMARKS, INDICATORS, SERIES, TABLES, TRADES
from plusultra_core.data.panel_index import PANEL_INDEX


def _desc(table: str, column: str) -> str:
    """The contract's description of ``table.column`` (one source of truth for the UI)."""
    for col in TABLES[table].columns:
        if col.name == column:
            return col.description
    raise KeyError(f"{table}.{column} is not in the contract")


def _field(table: str, column: str, **kwargs) -> pa.Field:
    spec = next(c for c in TABLES[table].columns if c.name == column)
    kwargs.setdefault("nullable", spec.nullable)
    return pa.Field(description=_desc(table, column), **kwargs)


def _table_config(table: str, **options) -> type:
    """A table schema's pandera ``Config``, read from the contract: the table's name and description
    and, for a composite primary key, frame-level uniqueness over it (a one-column key is its
    field's ``unique=True``). ``options`` are further pandera settings (``coerce=True``)."""
    key = TABLES[table].primary_key
    unique = {"unique": list(key)} if len(key) > 1 else {}
    return type("Config", (), {"name": table, "description": TABLES[table].description, **unique, **options})


def _finite_on(*columns: str):
    """The ``finite`` check of ``columns``, to assign to a schema's ``finite`` attribute."""
    def check(cls, series: Series[float]) -> Series[bool]:
        return finite(series)
    # pandera reports an inherited check under its function's name, not ``name=`` (see SeriesSchema)
    check.__name__ = check.__qualname__ = "finite"
    return pa.check(*columns, name="finite", element_wise=False)(check)


# ---------------------------------------------------------------------------------------------
# Vectorised check functions shared by several models. They accept a frame whose keys are
# either columns (raw tables) or index levels (stage frames), so stage models can inherit them.
# ---------------------------------------------------------------------------------------------

def _key(df: pd.DataFrame, name: str) -> np.ndarray:
    if name in df.columns:
        return df[name].to_numpy()
    return df.index.get_level_values(name).to_numpy()


def _zoned(values) -> np.ndarray:
    """[N] bool: the text carries a UTC offset or zone (`contract.ZONED_TIMESTAMP`); datetimes never."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64):
        return np.zeros(len(values), dtype=bool)
    text = pd.Series(values, dtype=object)
    return text.str.contains(contract.ZONED_TIMESTAMP, regex=True, na=False).to_numpy(dtype=bool)


def parse_timestamps(values) -> np.ndarray:
    """ISO-8601 text or datetimes -> naive datetime64[ns]: NaT where unparseable or zoned, as
    `contract.timestamp_sql` parses them (an offset is rejected, never applied or dropped)."""
    if np.issubdtype(np.asarray(values).dtype, np.datetime64):
        return np.asarray(values, dtype="datetime64[ns]")
    text = pd.Series(values, dtype=object).mask(_zoned(values))
    return pd.to_datetime(text, errors="coerce", format="ISO8601").to_numpy("datetime64[ns]")


def iso_timestamp(series: pd.Series) -> pd.Series:
    """True where the value parses as an ISO-8601 date/time (zoned text is `naive_timestamp`'s)."""
    values = series.to_numpy()
    return pd.Series(~np.isnat(parse_timestamps(values)) | _zoned(values), index=series.index)


def naive_timestamp(series: pd.Series) -> pd.Series:
    """True where the value carries no UTC offset or zone (see the `contract` docstring)."""
    return pd.Series(~_zoned(series.to_numpy()), index=series.index)


def not_in_future(series: pd.Series) -> pd.Series:
    """True where the timestamp is before `contract.future_horizon` (NaT is left to the parse check)."""
    horizon = np.datetime64(contract.future_horizon(), "ns")
    return pd.Series(~(parse_timestamps(series.to_numpy()) >= horizon), index=series.index)


def finite(series: pd.Series) -> pd.Series:
    """True where the value is finite (NaN is left to the nullable check)."""
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(~np.isinf(values), index=series.index)


def timestamps_increasing(df: pd.DataFrame) -> pd.Series:
    """True where the row's timestamp is later than the previous row *of the same symbol*.

    Row order is the storage order (rowid for a SQLite table, row position for a frame). A
    stable sort by symbol keeps that order within each symbol; the row is then compared with
    its predecessor in the sorted view and the verdict scattered back to the original position.
    """
    sym = pd.factorize(_key(df, "symbol"))[0]
    ts = parse_timestamps(_key(df, "timestamp")).view("int64")
    # codes number symbols by first appearance: non-decreasing codes mean rows are already
    # grouped by symbol (the usual layout) and the sort below would be the identity
    grouped = bool((sym[1:] >= sym[:-1]).all())
    order = None if grouped else np.argsort(sym, kind="stable")
    s, t = (sym, ts) if grouped else (sym[order], ts[order])
    bad_sorted = np.zeros(len(df), dtype=bool)
    same = s[1:] == s[:-1]
    # NaT (min int64) is flagged by iso_timestamp, not here: skip pairs that involve one
    nat = np.iinfo("int64").min
    bad_sorted[1:] = same & (t[1:] <= t[:-1]) & (t[1:] != nat) & (t[:-1] != nat)
    if grouped:
        return pd.Series(~bad_sorted, index=df.index)
    ok = np.ones(len(df), dtype=bool)
    ok[order] = ~bad_sorted
    return pd.Series(ok, index=df.index)


# A tradable symbol becomes a directory name in the store and, sharded by symbol, a Dagster
# partition key (inside a multi-partition key, inside temp names next to it). 64 characters leave
# that room under the 255-byte file-name limit (a 300-character symbol failed with ENAMETOOLONG
# after a partition was written) and keep keys readable in the UI.
MAX_SYMBOL_LENGTH = 64


def symbol_problem(symbol) -> str | None:
    """Why ``symbol`` cannot be a partition key / directory name (``None`` when it can)."""
    if not isinstance(symbol, str) or not symbol.strip():
        return "empty"
    if len(symbol) > MAX_SYMBOL_LENGTH:
        return f"{len(symbol)} characters, at most {MAX_SYMBOL_LENGTH}"
    bad = [c for c in ("/", "\\") if c in symbol] + sorted({c for c in symbol if not c.isprintable()})
    if bad:
        # a path separator in a directory name; a control character (NUL, newline, tab...) breaks
        # file names, Dagster's partition keys in the UI and every log line that names the symbol
        return f"contains {', '.join(map(repr, bad))}"
    if symbol.startswith("."):
        return "starts with '.'"  # '.', '..' (the parent directory) and hidden names
    return None


def usable_symbol(df: pd.DataFrame) -> pd.Series:
    """True unless the row may be tradable (``tradable`` not 0, or no such column) and its symbol
    cannot be a partition key (`symbol_problem`)."""
    flag = df["tradable"] if "tradable" in df else pd.Series(1, index=df.index)
    tradable = pd.to_numeric(flag, errors="coerce").fillna(1).to_numpy() != 0
    ok = np.ones(len(df), dtype=bool)
    ok[tradable] = [symbol_problem(s) is None for s in df["symbol"].to_numpy()[tradable]]
    return pd.Series(ok, index=df.index)


def high_ge_open_close(df: pd.DataFrame) -> pd.Series:
    """high >= max(open, close) (rows with a missing price are left to the nullable check)."""
    o, h, c = (df[k].to_numpy("float64") for k in ("open", "high", "close"))
    with np.errstate(invalid="ignore"):
        return pd.Series(~(h < np.fmax(o, c)), index=df.index)


def low_le_open_close(df: pd.DataFrame) -> pd.Series:
    """low <= min(open, close); together with the high check this implies low <= high."""
    o, lo, c = (df[k].to_numpy("float64") for k in ("open", "low", "close"))
    with np.errstate(invalid="ignore"):
        return pd.Series(~(lo > np.fmin(o, c)), index=df.index)


# ---------------------------------------------------------------------------------------------
# Contract tables
# ---------------------------------------------------------------------------------------------

class _TimestampChecks(pa.DataFrameModel):
    """The checks of every table's ``timestamp`` text, declared once (no field here: each table
    declares ``timestamp`` itself, so its column order stays the contract's)."""

    @pa.check("timestamp", name="iso_timestamp", element_wise=False)
    def iso_timestamp(cls, series: Series[str]) -> Series[bool]:
        return iso_timestamp(series)

    @pa.check("timestamp", name="naive_timestamp", element_wise=False)
    def naive_timestamp(cls, series: Series[str]) -> Series[bool]:
        return naive_timestamp(series)

    @pa.check("timestamp", name="not_in_future", element_wise=False)
    def not_in_future(cls, series: Series[str]) -> Series[bool]:
        return not_in_future(series)


class AssetsSchema(pa.DataFrameModel):
    """``assets``: instruments and market-wide series."""

    symbol: Series[str] = _field(ASSETS, "symbol", unique=True)
    name: Series[str] = _field(ASSETS, "name")
    asset_class: Series[str] = _field(ASSETS, "asset_class", isin=list(contract.ASSET_CLASSES))
    sector: Series[str] = _field(ASSETS, "sector")
    currency: Series[str] = _field(ASSETS, "currency")
    exchange: Series[str] = _field(ASSETS, "exchange")
    tradable: Series[int] = _field(ASSETS, "tradable", isin=[0, 1])
    publication_lag_days: Series[int] = _field(ASSETS, "publication_lag_days", ge=0)

    Config = _table_config(ASSETS, coerce=True)

    @pa.dataframe_check(name="usable_symbol", element_wise=False)
    def usable_symbol(cls, df: pd.DataFrame) -> Series[bool]:
        return usable_symbol(df)


class SeriesSchema(_TimestampChecks):
    """``series``: OHLCV candles, key (symbol, timestamp), stored in increasing time per symbol.

    Check methods are named exactly as their checks: pandera (0.35) reports an *inherited* check
    under its method name, not its ``name=``, once the parent schema has been built.
    """

    symbol: Series[str] = _field(SERIES, "symbol")
    timestamp: Series[str] = _field(SERIES, "timestamp")
    open: Series[float] = _field(SERIES, "open", gt=0)
    high: Series[float] = _field(SERIES, "high", gt=0)
    low: Series[float] = _field(SERIES, "low", gt=0)
    close: Series[float] = _field(SERIES, "close", gt=0)
    volume: Series[float] = _field(SERIES, "volume", ge=0)

    Config = _table_config(SERIES)

    finite = _finite_on("open", "high", "low", "close", "volume")

    @pa.dataframe_check(name="timestamps_increasing", element_wise=False)
    def timestamps_increasing(cls, df: pd.DataFrame) -> Series[bool]:
        return timestamps_increasing(df)

    @pa.dataframe_check(name="high_ge_open_close", element_wise=False)
    def high_ge_open_close(cls, df: pd.DataFrame) -> Series[bool]:
        return high_ge_open_close(df)

    @pa.dataframe_check(name="low_le_open_close", element_wise=False)
    def low_le_open_close(cls, df: pd.DataFrame) -> Series[bool]:
        return low_le_open_close(df)


class IndicatorsSchema(_TimestampChecks):
    """``indicators``: long-format per-symbol indicators and market-wide series."""

    timestamp: Series[str] = _field(INDICATORS, "timestamp")
    symbol: Series[str] = _field(INDICATORS, "symbol")
    name: Series[str] = _field(INDICATORS, "name")
    value: Series[float] = _field(INDICATORS, "value")

    Config = _table_config(INDICATORS)

    finite = _finite_on("value")


class TradesSchema(_TimestampChecks):
    """``trades``: executed fills."""

    trade_id: Series[int] = _field(TRADES, "trade_id", unique=True)
    timestamp: Series[str] = _field(TRADES, "timestamp")
    symbol: Series[str] = _field(TRADES, "symbol")
    side: Series[str] = _field(TRADES, "side", isin=["buy", "sell"])
    quantity: Series[float] = _field(TRADES, "quantity", gt=0)
    price: Series[float] = _field(TRADES, "price", gt=0)
    fee: Series[float] = _field(TRADES, "fee", ge=0)
    strategy: Series[str] = _field(TRADES, "strategy")
    decision_timestamp: Optional[Series[str]] = _field(TRADES, "decision_timestamp")

    Config = _table_config(TRADES)

    finite = _finite_on("quantity", "price", "fee")


class BenchmarksSchema(_TimestampChecks):
    """``benchmarks``: benchmark levels."""

    timestamp: Series[str] = _field(BENCHMARKS, "timestamp")
    benchmark: Series[str] = _field(BENCHMARKS, "benchmark")
    close: Series[float] = _field(BENCHMARKS, "close", gt=0)

    Config = _table_config(BENCHMARKS)

    finite = _finite_on("close")


# ---------------------------------------------------------------------------------------------
# Pipeline stages
# ---------------------------------------------------------------------------------------------

def _index_sorted_unique(df: pd.DataFrame) -> bool:
    """Index levels are exactly (timestamp, symbol), sorted, without duplicate keys."""
    return bool(tuple(df.index.names) == PANEL_INDEX
                and df.index.is_monotonic_increasing and df.index.is_unique)


class ValidatedBarsSchema(SeriesSchema):
    """The panel: validated candles indexed by (timestamp, symbol), plus ``ind_*``/``mkt_*``.

    Inherits every row check of `SeriesSchema`; the keys move from columns to index levels.
    """

    timestamp: Index[pd.Timestamp] = pa.Field(description="Bar date/time (naive UTC).", check_name=True)
    symbol: Index[str] = pa.Field(description="Tradable instrument.", check_name=True)
    ind: Series[float] = pa.Field(alias=r"^ind_.+$", regex=True, nullable=True, required=False,
                                  description="Per-symbol indicator pivoted from `indicators` (NaN where absent).")
    mkt: Series[float] = pa.Field(alias=r"^mkt_.+$", regex=True, nullable=True, required=False,
                                  description="Market-wide series as-of joined on timestamp + publication lag.")

    class Config:
        name = "validated_bars"
        description = "Validated OHLCV panel with per-symbol indicators and as-of market-wide series."
        unique = None
        strict = True
        # field order is inherited (symbol, timestamp); the level order is checked below
        multiindex_ordered = False

    @pa.check("^ind_.+$", "^mkt_.+$", name="finite", element_wise=False)
    def _extra_finite(cls, series: Series[float]) -> Series[bool]:
        return finite(series)

    @pa.dataframe_check(name="index_sorted_unique")
    def index_sorted_unique(cls, df: pd.DataFrame) -> bool:
        return _index_sorted_unique(df)


TABLE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    ASSETS: AssetsSchema,
    SERIES: SeriesSchema,
    INDICATORS: IndicatorsSchema,
    TRADES: TradesSchema,
    BENCHMARKS: BenchmarksSchema,
}

STAGE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "validated_bars": ValidatedBarsSchema,
}

SCHEMAS: dict[str, type[pa.DataFrameModel]] = {**TABLE_SCHEMAS, **STAGE_SCHEMAS}

# Column a dataframe-level check is about (pandera reports dataframe checks against the schema).
CHECK_COLUMNS: dict[str, str] = {
    "timestamps_increasing": "timestamp",
    "high_ge_open_close": "high",
    "low_le_open_close": "low",
    "index_sorted_unique": "index",
    "usable_symbol": "symbol",
}

# Twins of the checks that the array engine (`validation.array_violations`) cannot hand to pandera
# as they are, because it does not fetch the column's text: it fetches ``timestamp`` parsed (NaT
# where NULL, unparseable or zoned) plus a NULL flag and a zoned flag (the text carries an offset),
# and ``symbol`` as an integer code. A twin takes (parsed values, NULL flags, the rows' zoned
# flags) and is TRUE on a violating row; NULL is the nullable check's business, so a twin never
# flags it. Every other check of a big-table schema is run by pandera
# itself on the fetched float columns (column checks) or on a frame of the fetched arrays
# (dataframe checks, which therefore see ``symbol`` as a code and ``timestamp`` parsed).
ARRAY_TWINS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "not_nullable": lambda values, null, zoned: null,
    # the fetched time of a zoned text is NaT (`contract.timestamp_sql`): that is not a parse failure
    "iso_timestamp": lambda values, null, zoned: np.isnat(values) & ~null & ~zoned,
    "naive_timestamp": lambda values, null, zoned: zoned,
    "not_in_future": lambda values, null, zoned: values >= np.datetime64(contract.future_horizon(), "us"),
}
