"""The demo market database: real data shipped inside PyPI packages, no network needed.

Content
-------
==========  ==================  ================  =============================================
symbol      source              class / sector    what lands where
==========  ==================  ================  =============================================
SP500       arch.data.sp500     index / broad     ``series`` OHLCV 1999-2018, ``benchmarks``
NASDAQ      arch.data.nasdaq    index / broad     ``series`` OHLCV 1999-2018, ``benchmarks``
MSFT        pmdarima load_msft  equity / tech     ``series`` OHLCV 1986-2017 (split-adjusted)
VIX         arch.data.vix       volatility        ``indicators`` name ``close``, lag 0 days
WTI         arch.data.wti       commodity_index   ``indicators`` name ``close``, lag 1 day
CORE_CPI    arch.data.core_cpi  macro             ``indicators`` name ``value``, lag 45 days
FF          arch.data.frenchd.  factor            ``indicators`` ``mkt_rf smb hml rf``, lag 30
==========  ==================  ================  =============================================

Timestamps are observation dates: CORE_CPI is stamped on the first day of the month it measures
(BLS releases it mid next month, hence 45 days); Fama-French monthly returns are stamped on the
last calendar day of their month (Ken French's library posts them about a month later) and are
converted from percent to decimal returns. The FF file's index is an integer ``YYYYMM`` that
``arch`` parses as nanoseconds since the epoch; it is decoded back to year and month here.

Repairs (conservative and causal: nothing is ever filled from a later row)
-------------------------------------------------------------------------
Applied by `repair_ohlcv` to every candle source, and by `clean_observations` to market-wide
series, in this order:

1. rows sorted by date; duplicated dates keep the last row (a later row is a correction);
2. non-finite values become missing; a bar whose close is missing or <= 0 is dropped;
3. a missing or non-positive open becomes the previous kept close (the first bar: its close);
4. a missing or non-positive high/low becomes max/min(open, close);
5. high is raised to max(open, close, high) and low lowered to min(open, close, low);
6. a missing, negative or zero volume becomes the previous bar's positive volume (a zero-volume
   day on an index or a large-cap stock is a feed glitch); a leading one stays 0;
7. market-wide observations that are missing, non-finite or (for levels) <= 0 are dropped
   (holidays appear as blank rows in the FRED-style files).

What the shipped data needed (kept true by ``tests/core/data/test_demo_db.py``):

========  ===================================  =====
symbol    repair                               rows
========  ===================================  =====
NASDAQ    volume_zero_filled_from_previous     2
MSFT      volume_zero_filled_from_previous     1
VIX       missing_dropped                      46
WTI       missing_dropped                      290
========  ===================================  =====
"""

from __future__ import annotations

import importlib.util
import sqlite3
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core.data.contract import (ASSETS, BENCHMARKS, INDICATORS, SERIES, TABLES, TRADES,
                                          missing_tables_and_columns)
from plusultra_core.data.demo_fills import synthetic_fills
from plusultra_core.data.sqlite_writer import (DatabaseWriteError, atomic_database, check_destination,
                                               table_row_counts)
from plusultra_core.errors import ContractError

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class _Tradable:
    name: str
    asset_class: str
    sector: str
    exchange: str
    benchmark: bool


@dataclass(frozen=True)
class _MarketWide:
    name: str
    asset_class: str
    exchange: str
    publication_lag_days: int
    positive: bool  # a level that must be > 0 (VIX, oil, CPI), not a return


TRADABLE: dict[str, _Tradable] = {
    "SP500": _Tradable("S&P 500 index", "index", "broad_market", "arch.data.sp500", True),
    "NASDAQ": _Tradable("NASDAQ Composite index", "index", "broad_market", "arch.data.nasdaq", True),
    "MSFT": _Tradable("Microsoft Corp. (split-adjusted)", "equity", "technology",
                      "pmdarima.datasets.load_msft", False),
}

MARKET_WIDE: dict[str, _MarketWide] = {
    "VIX": _MarketWide("CBOE volatility index", "volatility", "arch.data.vix", 0, True),
    # EIA/FRED spot price: observable at the close, published the next business day at the earliest.
    "WTI": _MarketWide("WTI crude oil spot price", "commodity_index", "arch.data.wti", 1, True),
    "CORE_CPI": _MarketWide("US core CPI (CPILFESL)", "macro", "arch.data.core_cpi", 45, True),
    "FF": _MarketWide("Fama-French 3 factors (monthly, decimal)", "factor", "arch.data.frenchdata", 30, False),
}


@dataclass
class DemoDbSummary:
    """What `build_demo_database` wrote: rows per table, symbols, date range and repairs made."""

    path: Path
    rows: dict[str, int]
    symbols: tuple[str, ...]
    market_series: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    repairs: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{len(self.symbols)} tradable symbols, {self.rows[SERIES]} bars "
                f"{self.start.date()}..{self.end.date()}, {len(self.market_series)} market-wide series, "
                f"{sum(sum(c.values()) for c in self.repairs.values())} repaired rows")

    def to_text(self) -> str:
        """A short human-readable summary (the CLI prints it)."""
        lines = [f"wrote {self.path} in {self.seconds:.1f}s",
                 f"  tradable symbols: {', '.join(self.symbols)}  ({self.start.date()} .. {self.end.date()})",
                 f"  market-wide series: {', '.join(self.market_series)}",
                 "  rows: " + ", ".join(f"{k}={v}" for k, v in self.rows.items())]
        for symbol, counts in self.repairs.items():
            lines.append(f"  repaired {symbol}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Repairs (pure functions, vectorised)
# ---------------------------------------------------------------------------------------------

def _sort_dedupe(frame: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    if not frame.index.is_monotonic_increasing:
        counts["unsorted_rows_sorted"] = int((np.diff(frame.index.asi8) < 0).sum())
        frame = frame.sort_index(kind="stable")  # stable: duplicate dates keep their source order
    dup = frame.index.duplicated(keep="last")
    counts["duplicate_dates_dropped"] = int(dup.sum())
    return frame[~dup]


def repair_ohlcv(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Repair glitches in one symbol's daily candles; return the clean frame and repair counts.

    ``frame`` has a DatetimeIndex and columns open, high, low, close, volume (any numeric dtype).
    The rules (module docstring, steps 1-6) only ever use the same or an earlier bar. The result
    is float64, sorted, unique by date, OHLC-consistent with positive prices and volume >= 0.
    Counts are only reported when non-zero.
    """
    counts: dict[str, int] = {}
    df = frame.loc[:, list(OHLCV)].astype("float64")
    df = _sort_dedupe(df, counts)
    df = df.where(np.isfinite(df))  # inf -> NaN: treated exactly like a missing value

    bad_close = ~(df["close"] > 0)  # NaN compares False, so missing closes are caught too
    counts["bad_close_dropped"] = int(bad_close.sum())
    df = df[~bad_close].copy()
    close = df["close"]

    bad_open = ~(df["open"] > 0)
    counts["bad_open_set_to_previous_close"] = int(bad_open.sum())
    # previous kept close (causal); the very first bar has none, so it opens at its own close.
    df["open"] = df["open"].where(~bad_open, close.shift(1).fillna(close))

    body_hi = np.maximum(df["open"], close)
    body_lo = np.minimum(df["open"], close)
    bad_high, bad_low = ~(df["high"] > 0), ~(df["low"] > 0)
    counts["bad_high_low_set_from_body"] = int((bad_high | bad_low).sum())
    high = df["high"].where(~bad_high, body_hi)
    low = df["low"].where(~bad_low, body_lo)
    inconsistent = (high < body_hi) | (low > body_lo) | (high < low)
    counts["ohlc_inconsistent_clamped"] = int(inconsistent.sum())
    df["high"] = np.maximum(high, body_hi)
    df["low"] = np.minimum(low, body_lo)

    vol = df["volume"]
    bad_vol = ~(vol > 0)
    prev_positive = vol.where(~bad_vol).ffill()  # forward only: the last earlier positive volume
    counts["volume_zero_filled_from_previous"] = int((bad_vol & prev_positive.notna()).sum())
    # before any positive volume: a missing/negative one becomes 0 (a leading 0 is already valid)
    counts["volume_leading_bad_set_zero"] = int((bad_vol & prev_positive.isna() & (vol != 0)).sum())
    df["volume"] = vol.where(~bad_vol, prev_positive).fillna(0.0).clip(lower=0.0)
    return df, {k: v for k, v in counts.items() if v}


def clean_observations(values: pd.DataFrame, *, positive: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """Clean a market-wide series (DatetimeIndex, one column per field); return it and counts.

    Sorts, keeps the last of duplicated dates, and drops rows with any missing/non-finite field
    (and, for ``positive`` level series, any field <= 0). Counts are only reported when non-zero.
    """
    counts: dict[str, int] = {}
    df = _sort_dedupe(values.astype("float64"), counts)
    finite = np.isfinite(df).all(axis=1)
    counts["missing_dropped"] = int((~finite).sum())
    keep = finite
    if positive:
        nonpos = finite & ~(df > 0).all(axis=1)
        counts["non_positive_dropped"] = int(nonpos.sum())
        keep = keep & ~nonpos
    return df[keep], {k: v for k, v in counts.items() if v}


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------

def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    file = Path(spec.origin).parent.joinpath(*parts)
    return file if file.is_file() else None


def _arch_data(name: str, filename: str) -> pd.DataFrame:
    """Exactly ``arch.data.<name>.load()``, but reading its CSV directly.

    Importing ``arch`` pulls in its whole modelling stack (~3 s); the loaders only read a csv.gz,
    which this replicates (``arch.data.utility.load_file``). Falls back to the public loader.
    """
    file = _package_file("arch", "data", name, filename)
    if file is None:  # pragma: no cover - package layout changed
        return importlib.import_module(f"arch.data.{name}").load()
    data = pd.read_csv(file)
    if "Date" in data:
        data["Date"] = pd.to_datetime(data["Date"])
        data = data.set_index("Date")
    for col in data:
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return data


def _pmdarima_msft() -> pd.DataFrame:
    """Exactly ``pmdarima.datasets.load_msft()``, reading its tarball without importing pmdarima
    (its package import pulls in statsmodels and scikit-learn, ~4 s)."""
    file = _package_file("pmdarima", "datasets", "data", "msft.tar.gz")
    if file is None:  # pragma: no cover - package layout changed
        from pmdarima.datasets import load_msft
        return load_msft()
    with tarfile.open(file, "r:*") as tar:
        return pd.read_csv(tar.extractfile(tar.getnames()[0]), header=0)


def _ohlcv(raw: pd.DataFrame) -> pd.DataFrame:
    raw = raw.rename(columns=str.lower)
    if "date" in raw:
        raw = raw.set_index(pd.to_datetime(raw.pop("date")))
    raw.index = pd.DatetimeIndex(raw.index).as_unit("ns")
    return raw.loc[:, list(OHLCV)]


def _decode_yyyymm(index: pd.Index) -> pd.DatetimeIndex:
    """French-data index -> last calendar day of each month (the return is realised then)."""
    codes = index.asi8 if isinstance(index, pd.DatetimeIndex) else np.asarray(index, dtype="int64")
    if isinstance(index, pd.DatetimeIndex) and index.unit != "ns":
        codes = index.as_unit("ns").asi8  # arch parsed the YYYYMM ints as nanoseconds
    year, month = codes // 100, codes % 100
    if not ((month >= 1) & (month <= 12) & (year >= 1900) & (year <= 2200)).all():
        raise ContractError(f"arch.data.frenchdata: index is not YYYYMM (first values {codes[:3].tolist()})")
    first = pd.to_datetime({"year": year, "month": month, "day": np.ones_like(year)})
    return pd.DatetimeIndex(first + pd.offsets.MonthEnd(0)).as_unit("ns")


def _market_wide_sources() -> dict[str, pd.DataFrame]:
    """Each market-wide series as a DatetimeIndex frame whose columns are indicator names."""
    out = {
        "VIX": _arch_data("vix", "vix.csv.gz").rename(columns={"vix": "close"}),
        "WTI": _arch_data("wti", "wti.csv.gz").rename(columns={"DCOILWTICO": "close"}),
        "CORE_CPI": _arch_data("core_cpi", "core-cpi.csv.gz").rename(columns={"CPILFESL": "value"}),
    }
    ff = _arch_data("frenchdata", "frenchdata.csv.gz")
    ff.index = _decode_yyyymm(ff.index)
    out["FF"] = ff.rename(columns={"Mkt-RF": "mkt_rf", "SMB": "smb", "HML": "hml", "RF": "rf"}) / 100.0
    for frame in out.values():
        frame.index = pd.DatetimeIndex(frame.index).as_unit("ns")
    return out


def load_demo_sources() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Raw (unrepaired) sources: ({tradable symbol: OHLCV frame}, {series id: field frame})."""
    candles = {"SP500": _ohlcv(_arch_data("sp500", "sp500.csv.gz")),
               "NASDAQ": _ohlcv(_arch_data("nasdaq", "nasdaq.csv.gz")),
               "MSFT": _ohlcv(_pmdarima_msft())}
    return candles, _market_wide_sources()


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def _dates(index: pd.DatetimeIndex) -> list[str]:
    return index.strftime("%Y-%m-%d").tolist()


def _insert_sql(table: str) -> str:
    cols = TABLES[table].column_names
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _write_demo(conn: sqlite3.Connection, candles: dict[str, pd.DataFrame],
                market: dict[str, pd.DataFrame]) -> None:
    asset_rows = [(s, a.name, a.asset_class, a.sector, "USD", a.exchange, 1, 0) for s, a in TRADABLE.items()]
    asset_rows += [(s, m.name, m.asset_class, None, "USD", m.exchange, 0, m.publication_lag_days)
                   for s, m in MARKET_WIDE.items()]
    conn.executemany(_insert_sql(ASSETS), asset_rows)
    for symbol, df in candles.items():
        conn.executemany(_insert_sql(SERIES), zip(
            [symbol] * len(df), _dates(df.index), *(df[c].tolist() for c in OHLCV)))
        if TRADABLE[symbol].benchmark:
            conn.executemany(_insert_sql(BENCHMARKS), zip(_dates(df.index), [symbol] * len(df), df["close"].tolist()))
    for symbol, df in market.items():
        long = df.stack()  # (timestamp, name) -> value; rows are already clean and finite
        conn.executemany(_insert_sql(INDICATORS), zip(
            _dates(long.index.get_level_values(0)), [symbol] * len(long),
            long.index.get_level_values(1).tolist(), long.tolist()))


def build_demo_database(path: str | Path, *, overwrite: bool = False) -> DemoDbSummary:
    """Build the demo contract database at ``path`` from data shipped in ``arch`` and ``pmdarima``.

    Sources are repaired (`repair_ohlcv`, `clean_observations`; counts in the summary) and written
    atomically: the file appears complete or not at all. Raises `DatabaseWriteError` when ``path``
    exists and ``overwrite`` is False, or its directory does not exist.
    """
    t0 = time.perf_counter()
    path = Path(path)
    check_destination(path, overwrite=overwrite)  # fail before spending time loading sources
    raw_candles, raw_market = load_demo_sources()
    repairs: dict[str, dict[str, int]] = {}
    candles, market = {}, {}
    for symbol, df in raw_candles.items():
        candles[symbol], counts = repair_ohlcv(df)
        if counts:
            repairs[symbol] = counts
    for symbol, df in raw_market.items():
        market[symbol], counts = clean_observations(df, positive=MARKET_WIDE[symbol].positive)
        if counts:
            repairs[symbol] = counts
    with atomic_database(path, overwrite=overwrite) as conn:
        _write_demo(conn, candles, market)
        fills = synthetic_fills(candles)  # labelled synthetic: the demo has no real executions
        conn.executemany(_insert_sql(TRADES), fills.itertuples(index=False, name=None))
        rows = table_row_counts(conn)
    start = min(df.index[0] for df in candles.values())
    end = max(df.index[-1] for df in candles.values())
    return DemoDbSummary(path=path, rows=rows, symbols=tuple(TRADABLE), market_series=tuple(MARKET_WIDE),
                         start=start, end=end, repairs=repairs, seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Incremental updates (daily-inference and sensor tests)
# ---------------------------------------------------------------------------------------------

def append_trading_day(path: str | Path, day: str | pd.Timestamp | None = None, *, seed: int = 0) -> pd.Timestamp:
    """Append one new weekday bar for every tradable symbol that has bars; return that day.

    ``day`` defaults to the next business day after the newest bar of any tradable symbol and
    must be a weekday strictly after it. Each new bar is derived from the symbol's previous bar
    with a small move seeded by (``seed``, ``day``): open near the previous close, close a
    ~1% move away, high/low around the body (OHLC-consistent), volume near the previous one.
    Benchmarks named like a tradable symbol get that symbol's new close. One transaction.
    """
    path = Path(path)
    if not path.is_file():
        raise DatabaseWriteError(f"{path}: database not found")
    conn = sqlite3.connect(path)
    try:
        problems = missing_tables_and_columns(conn)
        if problems:
            raise ContractError(f"{path}: not a contract database: {'; '.join(problems)}")
        conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the last bars
        last = pd.read_sql_query(
            f"SELECT s.symbol, s.timestamp, s.close, s.volume FROM {SERIES} s "
            f"JOIN (SELECT s2.symbol, MAX(s2.timestamp) AS ts FROM {SERIES} s2 "
            f"      JOIN {ASSETS} a ON a.symbol = s2.symbol AND a.tradable = 1 GROUP BY s2.symbol) m "
            f"ON m.symbol = s.symbol AND m.ts = s.timestamp ORDER BY s.symbol", conn)
        if last.empty:
            raise DatabaseWriteError(f"{path}: no tradable symbol has any bar to extend")
        newest = pd.to_datetime(last["timestamp"]).max().normalize()
        new_day = newest + pd.offsets.BDay(1) if day is None else pd.Timestamp(day).normalize()
        if new_day <= newest or new_day.weekday() >= 5:
            raise DatabaseWriteError(
                f"{path}: day {new_day.date()} must be a weekday after the newest bar {newest.date()}")
        rows = _next_bars(last, new_day, seed)
        conn.executemany(_insert_sql(SERIES), rows.itertuples(index=False, name=None))
        bench = {r[0] for r in conn.execute(f"SELECT DISTINCT benchmark FROM {BENCHMARKS}")}
        bench_rows = rows[rows["symbol"].isin(bench)]
        conn.executemany(_insert_sql(BENCHMARKS),
                         zip(bench_rows["timestamp"], bench_rows["symbol"], bench_rows["close"]))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return new_day


def _next_bars(last: pd.DataFrame, day: pd.Timestamp, seed: int) -> pd.DataFrame:
    """One OHLC-consistent bar per row of ``last`` (symbol, close, volume), vectorised over symbols."""
    rng = np.random.default_rng([seed, day.toordinal()])
    n = len(last)
    prev_close, prev_vol = last["close"].to_numpy(float), last["volume"].to_numpy(float)
    open_ = prev_close * np.exp(rng.normal(0.0, 0.002, n))  # overnight gap
    close = prev_close * np.exp(np.clip(rng.normal(0.0, 0.01, n), -0.05, 0.05))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    volume = np.round(prev_vol * np.exp(rng.normal(0.0, 0.2, n)))
    return pd.DataFrame({"symbol": last["symbol"].to_numpy(), "timestamp": day.strftime("%Y-%m-%d"),
                         "open": open_, "high": high, "low": low, "close": close, "volume": volume},
                        columns=list(TABLES[SERIES].column_names))
