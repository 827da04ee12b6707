"""`SQLiteMarketDataset`: bulk, validated, look-ahead-free extraction of the market panel.

Every read goes through DuckDB (`duck.connect`, the file attached read-only): one scan of
``series`` into a temp table, validated there by the compiled pandera checks (`validation`), then
one sorted fetch as numpy arrays. The panel's MultiIndex is built from integer codes (no Python
strings per row), indicators are scattered into place with ``searchsorted`` and market-wide
series are joined as-of with numpy, one column at a time.

Panel (see the project interfaces): index ``(timestamp datetime64[ns], symbol str)`` sorted, unique;
columns ``open high low close volume`` (float64), ``ind_<name>`` per-symbol indicators (NaN where
absent), ``mkt_<symbol>_<name>`` market-wide series (lower-case, non-alphanumerics -> ``_``) whose
value at ``t`` is the latest observation with ``observation timestamp + publication_lag_days <=
t``: a monthly print is invisible before its release, never back-filled, never from the future.

SQL never contains values: parameters are bound with ``?``; table names come from `contract`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from plusultra_core.data import contract, duck, validation
from plusultra_core.data.contract import ASSETS, INDICATORS, MARKET_WIDE_CLASSES, SERIES, TABLES
from plusultra_core.data.duck import MARKET
from plusultra_core.data.periods import PERIODS
from plusultra_core.errors import ConfigError, ContractError, PartitionKeyError

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def market_column(symbol: str, name: str) -> str:
    """Panel column of a market-wide series field, e.g. ``('CORE_CPI', 'value') -> mkt_core_cpi_value``."""
    return "mkt_" + _NON_ALNUM.sub("_", f"{symbol}_{name}".lower())


def _bound(value, what: str, *, end: bool) -> pd.Timestamp | None:
    """Inclusive bound -> Timestamp; a date-only ``end`` covers the whole day (returned exclusive)."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}={value!r} is not a date/time") from exc
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if end:
        # exclusive upper bound: the next day for a date, the next microsecond otherwise
        return ts + (pd.Timedelta(days=1) if ts == ts.normalize() else pd.Timedelta(microseconds=1))
    return ts


class SQLiteMarketDataset:
    """Read-only access to one market database that follows `contract`.

    Raises `ContractError` naming the path when the file is missing, not SQLite, or lacks a
    contract table/column.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        conn = contract.open_readonly(self.path)
        try:
            problems = contract.missing_tables_and_columns(conn)
        except Exception as exc:
            raise ContractError(f"{self.path}: unreadable SQLite database: {exc}") from exc
        finally:
            conn.close()
        if problems:
            raise ContractError(f"{self.path}: does not follow the market-data contract: " + "; ".join(problems))
        self._conn = None
        self._pid = None

    # -- connection ------------------------------------------------------------------------

    def _duck(self):
        # a DuckDB connection must not cross a fork (Dagster's multiprocess executor)
        if self._conn is None or self._pid != os.getpid():
            self._conn = duck.connect(self.path)
            self._pid = os.getpid()
        return self._conn

    def close(self) -> None:
        """Close the DuckDB connection (reopened on the next read)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "SQLiteMarketDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteMarketDataset({str(self.path)!r})"

    # -- small reads -----------------------------------------------------------------------

    def assets(self) -> pd.DataFrame:
        """The ``assets`` table, sorted by symbol."""
        cols = ", ".join(TABLES[ASSETS].column_names)
        return self._duck().execute(f"SELECT {cols} FROM {MARKET}.{ASSETS} ORDER BY symbol").df()

    def symbols(self, tradable_only: bool = True) -> list[str]:
        """Symbols in ``assets`` (sorted); by default only those the pipeline may trade."""
        assets = self.assets()
        if tradable_only:
            assets = assets[(assets["tradable"] == 1) & ~assets["asset_class"].isin(MARKET_WIDE_CLASSES)]
        return [str(s) for s in assets["symbol"]]

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last bar timestamp in ``series`` (NaT, NaT when empty)."""
        lo, hi = self._duck().execute(f"SELECT min(TRY_CAST(timestamp AS TIMESTAMP)), "
                                      f"max(TRY_CAST(timestamp AS TIMESTAMP)) FROM {MARKET}.{SERIES}").fetchone()
        return pd.Timestamp(lo), pd.Timestamp(hi)

    # -- panel -----------------------------------------------------------------------------

    def load_panel(self, symbols: Iterable[str] | None = None, start=None, end=None, *,
                   validate: bool = True) -> pd.DataFrame:
        """Extract the panel of ``symbols`` (default: every symbol in ``series``) over [start, end].

        With ``validate`` (the default) the extracted ``series`` and ``indicators`` rows, the
        ``assets`` table and the assembled panel are checked against `schemas`, and
        `DataValidationError` is raised before anything is returned. Unknown or non-tradable
        symbols raise `PartitionKeyError` naming them.
        """
        conn = self._duck()
        lo, hi = _bound(start, "start", end=False), _bound(end, "end", end=True)
        if lo is not None and hi is not None and lo >= hi:
            raise ConfigError(f"load_panel: start {start} is after end {end}")
        assets = self.assets()
        wanted = self._check_symbols(symbols, assets)

        try:
            return self._load(conn, assets, wanted, lo, hi, validate)
        finally:
            # the staged rows are as large as the panel: do not keep them alive between calls
            for temp in ("bars", "inds", "known_symbols"):
                conn.execute(f"DROP TABLE IF EXISTS {temp}")

    def _load(self, conn, assets: pd.DataFrame, wanted: list[str] | None, lo, hi, validate: bool) -> pd.DataFrame:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE known_symbols AS SELECT symbol FROM {MARKET}.{ASSETS}")
        where, params = _where(wanted, lo, hi)
        validation.stage_table(conn, SERIES, "bars", where=where, params=params)
        market = assets[assets["asset_class"].isin(MARKET_WIDE_CLASSES)]
        conn.register("market_frame", market[["symbol", "publication_lag_days"]])
        # per-symbol indicators of the panel's symbols in range; market-wide ones up to ``end``
        # (earlier observations are needed for the as-of join at ``start``)
        ind_where = ("WHERE (symbol IN (SELECT DISTINCT symbol FROM bars) AND "
                     "      (ts IS NULL OR ((? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?)))) "
                     "   OR (symbol IN (SELECT symbol FROM market_frame) AND (ts IS NULL OR ? IS NULL OR ts < ?))")
        validation.stage_table(conn, INDICATORS, "inds", where=ind_where, params=[lo, lo, hi, hi, hi, hi])

        if validate:
            found = validation.frame_violations(assets, ASSETS)
            found += validation.sql_violations(conn, "bars", SERIES, known_relation="known_symbols")
            found += validation.sql_violations(conn, "inds", INDICATORS, known_relation="known_symbols")
            validation.raise_for_violations(found, f"{self.path}: extracted rows")

        panel = self._assemble(conn)
        if validate:
            # the series row checks ran on these very rows above; the stage adds its own contract
            validation.validate_frame(panel, validation.without_inherited_row_checks("validated_bars", SERIES))
        return panel

    def _check_symbols(self, symbols, assets: pd.DataFrame) -> list[str] | None:
        if symbols is None:
            return None
        if isinstance(symbols, str):
            symbols = [symbols]
        wanted = list(dict.fromkeys(str(s) for s in symbols))
        known = set(assets["symbol"])
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise PartitionKeyError(f"{self.path}: unknown symbol(s) not in {ASSETS}: {', '.join(unknown)}")
        tradable = set(assets.loc[(assets["tradable"] == 1) & ~assets["asset_class"].isin(MARKET_WIDE_CLASSES),
                                  "symbol"])
        not_tradable = [s for s in wanted if s not in tradable]
        if not_tradable:
            raise PartitionKeyError(f"{self.path}: symbol(s) are market-wide or not tradable, not panel "
                                    f"symbols: {', '.join(not_tradable)}")
        return wanted

    def _assemble(self, conn) -> pd.DataFrame:
        syms = sorted(r[0] for r in conn.execute("SELECT DISTINCT symbol FROM bars "
                                                 "WHERE symbol IN (SELECT symbol FROM known_symbols)").fetchall())
        conn.register("codes", pd.DataFrame({"symbol": syms, "code": np.arange(len(syms), dtype=np.int32)}))
        cols = ", ".join(f"b.{c}" for c in PRICE_COLUMNS)
        arr = conn.execute(f"SELECT b.ts, k.code, {cols} FROM bars b JOIN codes k USING (symbol) "
                           "WHERE b.ts IS NOT NULL ORDER BY b.ts, k.code").fetchnumpy()
        ts = np.asarray(arr["ts"]).astype("datetime64[ns]")
        sym_codes = np.asarray(arr["code"], dtype=np.int64)
        n = len(ts)
        # [N] bool: first row of each distinct timestamp (rows are sorted by time)
        new = np.ones(n, dtype=bool)
        new[1:] = ts[1:] != ts[:-1]
        ts_codes = np.cumsum(new) - 1
        uniq_ts = ts[new]
        index = pd.MultiIndex(levels=[pd.DatetimeIndex(uniq_ts), pd.Index(syms, dtype="str")],
                              codes=[ts_codes, sym_codes], names=["timestamp", "symbol"], verify_integrity=False)
        columns = {c: _float64(arr[c]) for c in PRICE_COLUMNS}
        ind_names, mkt_fields = self._extra_columns(conn)
        # [N] int64 key, increasing along the panel: locates (timestamp, symbol) pairs
        key = ts_codes * len(syms) + sym_codes
        columns.update(self._indicator_columns(conn, ind_names, uniq_ts, key, len(syms)))
        columns.update(self._market_columns(conn, mkt_fields, uniq_ts, ts_codes))
        # copy=False: each fetched array becomes its column as is, no stacking into one block
        return pd.DataFrame(columns, index=index, copy=False)

    def _extra_columns(self, conn) -> tuple[list[str], list[tuple[str, str]]]:
        """Indicator names of tradable symbols and market-wide (symbol, name) fields, over the
        whole database: every partition of a panel gets the same columns, whatever its range."""
        rows = conn.execute(
            f"SELECT DISTINCT m.symbol IS NOT NULL AS mkt, m.symbol, i.name FROM {MARKET}.{INDICATORS} i "
            "LEFT JOIN market_frame m USING (symbol)").fetchall()
        ind_names = sorted({name for mkt, _, name in rows if not mkt})
        fields = sorted({(sym, name) for mkt, sym, name in rows if mkt})
        cols = [market_column(s, n) for s, n in fields]
        if len(set(cols)) != len(cols):
            raise ContractError(f"{self.path}: market-wide fields collide on panel columns: "
                                f"{sorted(c for c in cols if cols.count(c) > 1)}")
        return ind_names, fields

    def _indicator_columns(self, conn, names: list[str], uniq_ts: np.ndarray, key: np.ndarray,
                           n_sym: int) -> dict:
        out = np.full((len(key), len(names)), np.nan)  # [N, n_names]
        if len(key) and names:
            conn.register("names", pd.DataFrame({"name": names, "ncode": np.arange(len(names), dtype=np.int32)}))
            arr = conn.execute("SELECT i.ts, k.code, n.ncode, i.value FROM inds i JOIN codes k USING (symbol) "
                               "JOIN names n USING (name) WHERE i.ts IS NOT NULL").fetchnumpy()
            its = np.asarray(arr["ts"]).astype("datetime64[ns]")
            # [M] position of each indicator row's timestamp among the panel's timestamps
            pos = np.minimum(np.searchsorted(uniq_ts, its), len(uniq_ts) - 1)
            hit = uniq_ts[pos] == its
            ikey = pos * n_sym + np.asarray(arr["code"], dtype=np.int64)
            row = np.minimum(np.searchsorted(key, ikey), len(key) - 1)
            hit &= key[row] == ikey  # indicator rows on dates without a bar are dropped
            out[row[hit], np.asarray(arr["ncode"], dtype=np.int64)[hit]] = _float64(arr["value"])[hit]
        return {f"ind_{name}": out[:, j] for j, name in enumerate(names)}

    def _market_columns(self, conn, fields: list[tuple[str, str]], uniq_ts: np.ndarray,
                        ts_codes: np.ndarray) -> dict:
        # availability = observation + publication lag; ordered for the as-of search below
        rows = conn.execute(
            "SELECT i.symbol, i.name, i.ts + to_days(CAST(m.publication_lag_days AS INTEGER)) AS avail, i.value "
            "FROM inds i JOIN market_frame m USING (symbol) WHERE i.ts IS NOT NULL "
            "ORDER BY i.symbol, i.name, avail").df()
        groups = dict(iter(rows.groupby(["symbol", "name"], sort=True))) if len(rows) else {}
        out = {}
        # one iteration per market-wide field (a handful of columns), vectorised over time
        for sym, name in fields:
            grp = groups.get((sym, name))
            if grp is None or not len(uniq_ts):
                out[market_column(sym, name)] = np.full(len(ts_codes), np.nan)
                continue
            avail = grp["avail"].to_numpy("datetime64[ns]")
            idx = np.searchsorted(avail, uniq_ts, side="right") - 1  # latest value public at t
            vals = np.where(idx >= 0, grp["value"].to_numpy("float64")[np.maximum(idx, 0)], np.nan)
            out[market_column(sym, name)] = vals[ts_codes]
        return dict(sorted(out.items()))

    # -- fingerprints ----------------------------------------------------------------------

    def partition_fingerprints(self, period: str) -> pd.DataFrame:
        """Content fingerprint per symbol × period, in one grouped DuckDB query.

        Columns: ``symbol, period_start, n_rows, first_timestamp, last_timestamp, checksum``.
        The checksum is an order-independent sum of row hashes over the symbol's ``series`` and
        ``indicators`` rows in the period, plus the market-wide observations in force during the
        period (an edited VIX value changes the period of every symbol, since every panel row
        sees it). Adding, removing or editing one row changes only the partitions that row
        reaches. Hashes are DuckDB's: stable for one DuckDB release.
        """
        if period not in PERIODS:
            raise PartitionKeyError(f"unknown history period '{period}'; expected one of {', '.join(PERIODS)}")
        months = PERIODS[period][2]
        # ``period`` is one of the PERIODS keys (checked above), which are DuckDB date parts
        sql = f"""
        WITH bars AS (
            SELECT symbol, TRY_CAST(timestamp AS TIMESTAMP) AS ts,
                   hash(timestamp, open, high, low, close, volume) AS h
            FROM {MARKET}.{SERIES}),
        lag AS (SELECT symbol, publication_lag_days AS lag FROM {MARKET}.{ASSETS}
                WHERE asset_class IN (SELECT unnest(?::VARCHAR[]))),
        ind AS (SELECT symbol, name, TRY_CAST(timestamp AS TIMESTAMP) AS ts, hash(timestamp, name, value) AS h
                FROM {MARKET}.{INDICATORS}),
        s AS (SELECT symbol, date_trunc('{period}', ts) AS p, count(*) AS n_rows, min(ts) AS first_ts,
                     max(ts) AS last_ts, sum(h::HUGEINT) AS hs
              FROM bars WHERE ts IS NOT NULL GROUP BY ALL),
        i AS (SELECT symbol, date_trunc('{period}', ts) AS p, sum(h::HUGEINT) AS hi
              FROM ind WHERE ts IS NOT NULL AND symbol NOT IN (SELECT symbol FROM lag) GROUP BY ALL),
        obs AS (SELECT ind.h, ind.ts + to_days(CAST(lag.lag AS INTEGER)) AS avail,
                       lead(ind.ts + to_days(CAST(lag.lag AS INTEGER)))
                           OVER (PARTITION BY ind.symbol, ind.name ORDER BY ind.ts) AS next_avail
                FROM ind JOIN lag USING (symbol) WHERE ind.ts IS NOT NULL),
        last AS (SELECT max(ts) + INTERVAL 1 DAY AS t FROM bars),
        -- an observation is in force over [avail, next_avail): count it in every period it reaches
        m AS (SELECT p, sum(h::HUGEINT) AS hm FROM (
                SELECT h, unnest(generate_series(date_trunc('{period}', avail),
                        date_trunc('{period}', greatest(avail, coalesce(next_avail, (SELECT t FROM last))
                                                              - INTERVAL 1 MICROSECOND)),
                        INTERVAL {months} MONTH)) AS p
                FROM obs) GROUP BY ALL)
        SELECT s.symbol, s.p AS period_start, s.n_rows, s.first_ts AS first_timestamp,
               s.last_ts AS last_timestamp,
               printf('%016x', hash(s.n_rows, s.hs, coalesce(i.hi, 0), coalesce(m.hm, 0))) AS checksum
        FROM s LEFT JOIN i USING (symbol, p) LEFT JOIN m USING (p)
        ORDER BY s.symbol, s.p"""
        df = self._duck().execute(sql, [list(MARKET_WIDE_CLASSES)]).df()
        for c in ("period_start", "first_timestamp", "last_timestamp"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        df["n_rows"] = df["n_rows"].astype("int64")
        df["symbol"] = df["symbol"].astype(str)
        return df


def _float64(values) -> np.ndarray:
    """A fetched column as plain float64, NULL (masked) -> NaN, without copying when possible."""
    if np.ma.isMaskedArray(values):
        return np.ma.filled(values.astype("float64"), np.nan)
    return np.asarray(values, dtype="float64")


def _where(symbols: list[str] | None, lo, hi) -> tuple[str, list]:
    """Row filter of the ``series`` scan. Rows with unparseable timestamps are kept so that
    validation can report them."""
    clauses, params = [], []
    if symbols is not None:
        clauses.append("symbol IN (SELECT unnest(?::VARCHAR[]))")
        params.append(symbols)
    if lo is not None:
        clauses.append("(ts IS NULL OR ts >= ?)")
        params.append(lo)
    if hi is not None:
        clauses.append("(ts IS NULL OR ts < ?)")
        params.append(hi)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
