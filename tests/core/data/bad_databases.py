"""Builders of small real SQLite market databases: one good one, and variants with one defect each.

`good_frames()` is the reference content (2 tradable symbols, a per-symbol indicator, a daily and
a monthly market-wide series with a publication lag, a benchmark, trades). `DEFECTS` maps a
defect name to (builder, expected): ``expected`` is either ``(table, column, check)`` that the
validation must report, or a substring of the structure problem it must report.

Defects that a constraint would reject (nulls, duplicate keys) are written into tables created
without constraints, exactly as a careless user's export would be.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from plusultra_core.data.contract import (ASSETS, BENCHMARKS, INDICATORS, SERIES, TABLES, TRADES,
                                          create_schema)

TRADABLE = ("AAA", "BBB")
N_DAYS = 40
START = "2020-01-01"
CPI_LAG = 45


def good_frames() -> dict[str, pd.DataFrame]:
    """The content of the good database, one DataFrame per table (column order as the contract)."""
    rng = np.random.default_rng(7)
    days = pd.bdate_range(START, periods=N_DAYS)
    assets = pd.DataFrame([
        ("AAA", "Alpha Corp", "equity", "tech", "USD", "XNAS", 1, 0),
        ("BBB", "Beta Inc", "equity", None, "USD", None, 1, 0),
        ("VIX", "CBOE volatility index", "volatility", None, "USD", "CBOE", 0, 0),
        ("CORE_CPI", "Core CPI", "macro", None, "USD", "BLS", 0, CPI_LAG),
    ], columns=TABLES[ASSETS].column_names)
    series = []
    for i, sym in enumerate(TRADABLE):
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, N_DAYS)))
        open_ = close * np.exp(rng.normal(0, 0.002, N_DAYS))
        series.append(pd.DataFrame({
            "symbol": sym, "timestamp": days.strftime("%Y-%m-%d"), "open": open_,
            "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
            "close": close, "volume": rng.integers(1_000, 50_000, N_DAYS).astype(float)}))
    series = pd.concat(series, ignore_index=True)
    # per-symbol indicator: AAA every day, BBB every other day (the panel shows NaN in between)
    rsi = series[["timestamp", "symbol"]].assign(name="rsi", value=np.linspace(20, 80, len(series)))
    rsi = rsi[(rsi.symbol == "AAA") | (rsi.index % 2 == 0)]
    # VIX: observed on every other business day (as-of carries the last value forward)
    vix = pd.DataFrame({"timestamp": days[::2].strftime("%Y-%m-%d"), "symbol": "VIX", "name": "close",
                        "value": np.arange(len(days[::2]), dtype=float) + 10.0})
    # CPI: monthly observation dated the 1st, public CPI_LAG days later
    cpi = pd.DataFrame({"timestamp": ["2019-12-01", "2020-01-01", "2020-02-01"], "symbol": "CORE_CPI",
                        "name": "value", "value": [1.0, 2.0, 3.0]})
    indicators = pd.concat([rsi, vix, cpi], ignore_index=True)
    benchmarks = pd.DataFrame({"timestamp": days.strftime("%Y-%m-%d"), "benchmark": "SP500",
                               "close": np.linspace(3000, 3100, N_DAYS)})
    trades = pd.DataFrame([(1, "2020-01-02", "AAA", "buy", 10.0, 101.0, 1.0, "demo", None),
                           (2, "2020-01-06", "AAA", "sell", 10.0, 102.0, 1.0, None, "2020-01-03")],
                          columns=TABLES[TRADES].column_names)
    return {ASSETS: assets, SERIES: series, INDICATORS: indicators, BENCHMARKS: benchmarks, TRADES: trades}


def write_database(path: Path, frames: dict[str, pd.DataFrame], *, loose: tuple[str, ...] = ()) -> Path:
    """Write ``frames`` to a new SQLite file; tables in ``loose`` are created without constraints.

    Rows are inserted in frame order, so the frame order is the rowid (storage) order.
    """
    path = Path(path)
    conn = sqlite3.connect(path)
    try:
        for table in loose:
            cols = ", ".join(f"{c} {t}" for c, t in ((c.name, c.sqltype) for c in TABLES[table].columns)
                             if c in frames[table].columns)
            conn.execute(f"CREATE TABLE {table} ({cols})")
        create_schema(conn)
        for table, df in frames.items():
            df = df.astype(object).where(df.notna(), None)
            marks = ", ".join("?" * df.shape[1])
            conn.executemany(f"INSERT INTO {table} ({', '.join(df.columns)}) VALUES ({marks})",
                             df.itertuples(index=False, name=None))
        conn.commit()
    finally:
        conn.close()
    return path


def build_good(path: Path) -> Path:
    return write_database(path, good_frames())


def _series_defect(mutate: Callable[[pd.DataFrame], pd.DataFrame], loose: bool = False):
    def build(path: Path) -> Path:
        frames = good_frames()
        frames[SERIES] = mutate(frames[SERIES].copy())
        return write_database(path, frames, loose=(SERIES,) if loose else ())
    return build


def _set(row: int, column: str, value):
    def mutate(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, column] = value
        return df
    return mutate


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[5]]], ignore_index=True)


def _unsorted(df: pd.DataFrame) -> pd.DataFrame:
    order = np.arange(len(df))
    order[[3, 4]] = order[[4, 3]]  # rows 3 and 4 of AAA stored out of time order
    return df.iloc[order].reset_index(drop=True)


def _ohlc(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[7, "high"] = df.loc[7, ["open", "close"]].min() * 0.5  # high below open and close
    df.loc[7, "low"] = df.loc[7, "high"] * 0.9
    return df


def _unknown_symbol(df: pd.DataFrame) -> pd.DataFrame:
    extra = df[df.symbol == "AAA"].head(3).assign(symbol="ZZZ")
    return pd.concat([df, extra], ignore_index=True)


def _future_bar(df: pd.DataFrame) -> pd.DataFrame:
    """A bar of AAA dated 30 days from now, stored after AAA's other rows (so still in order)."""
    day = (pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    return pd.concat([df, df[df.symbol == "AAA"].tail(1).assign(timestamp=day)], ignore_index=True)


def _zoned_benchmarks(path: Path) -> Path:
    """Two benchmark rows with *different* UTC offsets (pandas alone refuses to parse such a mix)."""
    frames = good_frames()
    frames[BENCHMARKS].loc[3, "timestamp"] = "2020-01-06T00:00:00+00:00"
    frames[BENCHMARKS].loc[4, "timestamp"] = "2020-01-07 09:30-05:00"
    return write_database(path, frames)


UNUSABLE_SYMBOLS = ("S" * 300, "..", "BRK/B", ".hidden", " ", "C:\\X")


def _unusable_symbols(path: Path) -> Path:
    """Tradable assets whose symbols cannot be partition keys (no bars needed to be refused), and a
    market-wide series with an odd id, which never becomes a key and so is fine."""
    frames = good_frames()
    extra = [(s, f"odd {i}", "equity", None, "USD", None, 1, 0) for i, s in enumerate(UNUSABLE_SYMBOLS)]
    extra.append(("../FF", "factor with an odd id", "factor", None, "USD", None, 0, 0))
    frames[ASSETS] = pd.concat([frames[ASSETS], pd.DataFrame(extra, columns=frames[ASSETS].columns)],
                               ignore_index=True)
    return write_database(path, frames)


def build_missing_table(path: Path) -> Path:
    frames = good_frames()
    del frames[INDICATORS]
    write_database(path, frames)
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP TABLE {INDICATORS}")
    return path


def build_missing_column(path: Path) -> Path:
    frames = good_frames()
    frames[SERIES] = frames[SERIES].drop(columns=["volume"])
    return write_database(path, frames, loose=(SERIES,))


def build_not_sqlite(path: Path) -> Path:
    Path(path).write_text("symbol,timestamp,close\nAAA,2020-01-01,1.0\n")
    return Path(path)


DEFECTS: dict[str, tuple[Callable[[Path], Path], tuple[str, str, str] | str]] = {
    "null_close": (_series_defect(_set(2, "close", None), loose=True), (SERIES, "close", "not_nullable")),
    "duplicate_key": (_series_defect(_duplicate, loose=True),
                      (SERIES, "symbol, timestamp", "multiple_fields_uniqueness")),
    "unsorted_timestamps": (_series_defect(_unsorted), (SERIES, "timestamp", "timestamps_increasing")),
    "bad_timestamp": (_series_defect(_set(9, "timestamp", "2020-13-45")), (SERIES, "timestamp", "iso_timestamp")),
    "ohlc_inconsistent": (_series_defect(_ohlc), (SERIES, "high", "high_ge_open_close")),
    "zero_price": (_series_defect(_set(4, "low", 0.0)), (SERIES, "low", "greater_than(0)")),
    "inf_price": (_series_defect(_set(6, "open", float("inf"))), (SERIES, "open", "finite")),
    "negative_volume": (_series_defect(_set(8, "volume", -5.0)),
                        (SERIES, "volume", "greater_than_or_equal_to(0)")),
    "unknown_symbol": (_series_defect(_unknown_symbol), (SERIES, "symbol", "known_symbol")),
    # AAA's 10th bar (2020-01-14) written with New York's offset: rejected, never shifted
    "zoned_timestamp": (_series_defect(_set(9, "timestamp", "2020-01-14 20:00:00-05:00")),
                        (SERIES, "timestamp", "naive_timestamp")),
    "zoned_benchmark": (_zoned_benchmarks, (BENCHMARKS, "timestamp", "naive_timestamp")),
    "future_bar": (_series_defect(_future_bar), (SERIES, "timestamp", "not_in_future")),
    "unusable_symbol": (_unusable_symbols, (ASSETS, "symbol", "usable_symbol")),
    "missing_table": (build_missing_table, f"table '{INDICATORS}' is missing"),
    "missing_column": (build_missing_column, f"table '{SERIES}': column 'volume' is missing"),
    "not_sqlite": (build_not_sqlite, "not a SQLite database"),
}

ROW_DEFECTS = [k for k, (_, exp) in DEFECTS.items() if isinstance(exp, tuple)]
STRUCTURE_DEFECTS = [k for k, (_, exp) in DEFECTS.items() if isinstance(exp, str)]
