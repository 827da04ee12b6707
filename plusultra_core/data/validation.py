"""Validation of frames and whole market databases, reported as table / column / check / rows.

Design
------
`schemas` defines every check once, as pandera ``DataFrameModel`` fields and vectorised checks.
Two engines execute those definitions:

* **pandera engine** (`frame_violations`, `validate_frame`): ``schema.validate(df, lazy=True)``
  on a pandas frame. Used for small tables (``assets``, ``trades``, ``benchmarks``), for stage
  frames, and by anyone holding a DataFrame.
* **array engine** (`fetch_rows` + `array_violations`): for the big tables (``series``,
  ``indicators``) DuckDB scans the SQLite file once, in parallel, straight into numpy arrays
  (via Arrow; no temp table): the rowid, floats as they are, ``timestamp`` parsed to int64
  microseconds plus a NULL flag and a zoned flag, ``symbol`` as an integer code from an ENUM
  cast. The engine walks the *pandera schema object* and runs pandera's own check objects on
  those arrays (column checks on the float columns, dataframe checks on a frame of the arrays);
  only checks on text columns (nullability, the timestamp checks) run as `schemas.ARRAY_TWINS`.
  Only a failing check costs a query, for its first offending rows by rowid. Checks, names and
  the report format stay pandera's; only the execution moves. A text check without a twin is
  a programming error (`NotImplementedError`), asserted by a test, and parity tests assert
  that both engines flag the same (column, check), counts and rows on every defect.

Why: on 1M ``series`` rows (200 symbols x 5000 days, 2 cores shared with other jobs),
``read_sql`` alone took 3.3-3.8 s and pandera's ``SeriesSchema.validate`` on the frame 1.2 s
more; the scan into arrays takes 0.6-1.0 s, every check 0.1 s (``bench/bench_extract.py``
measures both sides). Staging into a DuckDB temp table first (the previous engine) cost 1.7 s
by itself. The duplicate-key check is skipped when ``timestamps_increasing`` and
``iso_timestamp`` both pass: timestamps strictly increasing per symbol admit no duplicate
(symbol, timestamp) key; otherwise a numpy screen on the parsed key finds candidates and
their raw text decides.

``validate_database`` never raises on a bad file: an unreadable file, missing tables or columns
and unreadable tables are reported as structure problems beside the row-level violations.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from plusultra_core.data import contract, schemas
from plusultra_core.data.contract import ASSETS, INDICATORS, SERIES, TABLES, TRADES
from plusultra_core.errors import ContractError, DataValidationError

MAX_FAILURE_ROWS = 5
MAX_SYMBOLS_SHOWN = 10  # unusable symbols named in `check_usable_symbols`' one line (each cut short)
KNOWN_SYMBOL = "known_symbol"
# Tables validated by the array engine (large); the others go through pandera directly.
ARRAY_ENGINE_TABLES = (SERIES, INDICATORS)
# Tables whose ``symbol`` column must reference ``assets``.
REFERENCING_TABLES = (SERIES, INDICATORS, TRADES)


# ---------------------------------------------------------------------------------------------
# Report objects
# ---------------------------------------------------------------------------------------------

@dataclass
class Violation:
    """One failed check: where (table, column), what (check), how often, and the first rows."""

    table: str
    column: str
    check: str
    count: int
    failure_cases: pd.DataFrame

    def to_text(self, indent: str = "    ") -> str:
        head = f"{self.table}: column '{self.column}' failed check '{self.check}' in {self.count} row(s)"
        rows = self.failure_cases.to_string(index=False) if len(self.failure_cases) else "(no rows)"
        shown = f"first {len(self.failure_cases)} offending row(s):"
        return head + "; " + shown + "\n" + "\n".join(indent + line for line in rows.splitlines())

    def to_dict(self) -> dict:
        return {
            "table": self.table, "column": self.column, "check": self.check, "count": int(self.count),
            "first_rows": json.loads(self.failure_cases.to_json(orient="records", date_format="iso",
                                                               default_handler=str)),
        }


@dataclass
class TableReport:
    """Row count, symbol count, date range and violations of one table."""

    table: str
    rows: int | None = None
    symbols: int | None = None
    first: str | None = None
    last: str | None = None
    violations: list[Violation] = field(default_factory=list)
    skipped: str | None = None  # why the row checks did not run (missing column, unreadable)

    @property
    def ok(self) -> bool:
        return not self.violations and self.skipped is None

    def to_text(self) -> str:
        status = "ok" if self.ok else ("SKIPPED" if self.skipped else f"{len(self.violations)} violation(s)")
        span = f"{self.first} .. {self.last}" if self.first is not None else "-"
        lines = [f"{self.table}: {self.rows if self.rows is not None else '-'} rows, "
                 f"{self.symbols if self.symbols is not None else '-'} symbols, {span}  [{status}]"]
        if self.skipped:
            lines.append(f"  checks not run: {self.skipped}")
        lines += ["  - " + v.to_text() for v in self.violations]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"table": self.table, "rows": self.rows, "symbols": self.symbols, "first": self.first,
                "last": self.last, "ok": self.ok, "skipped": self.skipped,
                "violations": [v.to_dict() for v in self.violations]}


@dataclass
class DatabaseReport:
    """Result of `validate_database`: structure problems plus one `TableReport` per table."""

    path: str
    usable: bool = True  # False when the file is missing or not SQLite (nothing could be checked)
    problems: list[str] = field(default_factory=list)
    tables: dict[str, TableReport] = field(default_factory=dict)

    @property
    def violations(self) -> list[Violation]:
        return [v for t in self.tables.values() for v in t.violations]

    @property
    def ok(self) -> bool:
        return self.usable and not self.problems and all(t.ok for t in self.tables.values())

    def to_text(self) -> str:
        lines = [f"market database: {self.path}", f"status: {'OK' if self.ok else 'INVALID'}"]
        if self.problems:
            lines.append("structure problems:")
            lines += [f"  - {p}" for p in self.problems]
        lines += [t.to_text() for t in self.tables.values()]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "usable": self.usable, "problems": list(self.problems),
                "tables": {k: t.to_dict() for k, t in self.tables.items()}}


def raise_for_violations(violations: list[Violation], where: str) -> None:
    """Raise `DataValidationError` listing every violation (the first one in its attributes).

    The first line alone says what failed where (``table.column 'check'`` of each, the first
    three named); the lines below show each violation's first offending rows.
    """
    if not violations:
        return
    first = violations[0]
    named = ", ".join(f"{v.table}.{v.column} '{v.check}'" for v in violations[:3])
    more = f" (+{len(violations) - 3} more)" if len(violations) > 3 else ""
    body = "\n".join("  - " + v.to_text(indent="      ") for v in violations)
    raise DataValidationError(f"{where}: {len(violations)} check(s) failed: {named}{more}\n{body}",
                              table=first.table, column=first.column, check=first.check,
                              failure_cases=first.failure_cases, report=violations)


def check_usable_symbols(assets: pd.DataFrame, where=None) -> None:
    """Raise a one-line `DataValidationError` (``assets.symbol``, check ``usable_symbol``) naming
    the first tradable symbols that cannot be partition keys, each with its reason, before any
    key is made from them (`schemas.symbol_problem`)."""
    bad = ~schemas.usable_symbol(assets).to_numpy()
    found = [(s, schemas.symbol_problem(s)) for s in assets["symbol"].to_numpy()[bad]]
    if not found:
        return
    shown = ", ".join(f"{_short(s)} ({why})" for s, why in found[:MAX_SYMBOLS_SHOWN])
    more = f", ... (+{len(found) - MAX_SYMBOLS_SHOWN} more)" if len(found) > MAX_SYMBOLS_SHOWN else ""
    prefix = f"{where}: " if where else ""
    raise DataValidationError(
        f"{prefix}table '{ASSETS}', column 'symbol', check 'usable_symbol': {len(found)} tradable "
        f"symbol(s) cannot be partition keys: {shown}{more}", table=ASSETS, column="symbol",
        check="usable_symbol",
        failure_cases=pd.DataFrame(found[:MAX_SYMBOLS_SHOWN], columns=["symbol", "problem"]))


def _short(value, limit: int = 24) -> str:
    """``repr`` of a value cut to ``limit`` characters (a 300-character symbol stays one line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# pandera engine
# ---------------------------------------------------------------------------------------------

def _schema_object(schema) -> pa.DataFrameSchema:
    if isinstance(schema, str):
        if schema not in schemas.SCHEMAS:
            raise ContractError(f"unknown table or stage schema '{schema}'; "
                                f"known: {', '.join(sorted(schemas.SCHEMAS))}")
        schema = schemas.SCHEMAS[schema]
    if isinstance(schema, type) and issubclass(schema, pa.DataFrameModel):
        return schema.to_schema()
    if isinstance(schema, pa.DataFrameSchema):
        return schema
    raise TypeError(f"not a schema: {schema!r}")


def known_symbol_check(known: Iterable[str]) -> pa.Check:
    """The referential check: the symbol exists in ``assets``."""
    allowed = pd.Index(sorted(set(known)))
    return pa.Check(lambda s: pd.Series(allowed.get_indexer(s) >= 0, index=s.index), name=KNOWN_SYMBOL,
                    element_wise=False, description="symbol exists in assets")


def _with_known_symbols(schema: pa.DataFrameSchema, known: Iterable[str]) -> pa.DataFrameSchema:
    check = known_symbol_check(known)
    if "symbol" in schema.columns:
        return schema.update_column("symbol", checks=[*schema.columns["symbol"].checks, check])
    schema = copy.deepcopy(schema)
    levels = getattr(schema.index, "indexes", [schema.index] if schema.index is not None else [])
    for level in levels:
        if level.name == "symbol":
            level.checks = [*level.checks, check]
    return schema


def frame_violations(df: pd.DataFrame, schema, *, known_symbols: Iterable[str] | None = None) -> list[Violation]:
    """Run a pandera schema (table/stage name, model or schema) on ``df`` and group its failures."""
    schema = _schema_object(schema)
    if known_symbols is not None:
        schema = _with_known_symbols(schema, known_symbols)
    try:
        # inplace: pandera otherwise copies (and consolidates) the whole frame first, which costs
        # more than the checks on a panel; only a coercing schema (assets) may change ``df``
        schema.validate(df, lazy=True, inplace=not schema.coerce)
    except pa.errors.SchemaErrors as exc:
        return _group_failures(df, schema, exc.failure_cases)
    return []


def _group_failures(df: pd.DataFrame, schema: pa.DataFrameSchema, cases: pd.DataFrame) -> list[Violation]:
    table = schema.name or "frame"
    cases = cases.copy()
    key_cols = dict(schemas.CHECK_COLUMNS)
    if schema.unique:
        key_cols["multiple_fields_uniqueness"] = ", ".join(schema.unique)
    # dataframe-level checks are reported once per column of the frame: fold them to one column
    cases["column"] = [key_cols.get(str(chk), col) for chk, col in zip(cases["check"], cases["column"])]
    cases["column"] = cases["column"].fillna("(frame)").astype(str)
    out = []
    for (column, check), grp in cases.groupby(["column", "check"], sort=False):
        labels = [i for i in pd.unique(grp["index"].to_numpy(dtype=object)) if i is not None and i == i]
        if labels:
            rows = df.loc[_label_mask(df.index, labels)].head(MAX_FAILURE_ROWS).reset_index()
            count = len(labels)
        else:  # schema-level failure (missing column, wrong dtype): show pandera's failure cases
            rows = grp[["failure_case"]].head(MAX_FAILURE_ROWS).reset_index(drop=True)
            count = len(grp)
        out.append(Violation(table, column, str(check), count, rows))
    return out


def _label_mask(index: pd.Index, labels: list) -> np.ndarray:
    """Rows of ``index`` among pandera's failure labels (failure path only)."""
    if isinstance(index, pd.MultiIndex) and all(isinstance(lab, str) for lab in labels):
        # pandera reports MultiIndex labels as their repr, e.g. "(Timestamp('2020-01-01 ...'), 'A')"
        return index.to_flat_index().map(str).isin(set(labels))
    return index.isin(labels)


def without_inherited_row_checks(stage, table: str) -> pa.DataFrameSchema:
    """``stage`` schema minus the row checks it inherits from ``table``'s schema.

    For a frame assembled from rows that the array engine has just validated against the table
    schema, re-running those checks would repeat the same work on the same values; what remains
    is the stage's own contract: columns, dtypes, nullability, index order and uniqueness, and
    the checks on columns the stage adds.
    """
    stage_schema = copy.deepcopy(_schema_object(stage))
    parent = _schema_object(table)
    done = {(name, c.name) for name, col in parent.columns.items() for c in col.checks}
    for name, col in stage_schema.columns.items():
        col.checks = [c for c in col.checks if (name, c.name) not in done]
    for level in getattr(stage_schema.index, "indexes", []):
        level.checks = [c for c in level.checks if (level.name, c.name) not in done]
    inherited = {c.name for c in parent.checks}
    stage_schema.checks = [c for c in stage_schema.checks if c.name not in inherited]
    return stage_schema


def validate_frame(df: pd.DataFrame, schema_name_or_table, *, known_symbols: Iterable[str] | None = None) -> None:
    """Validate ``df`` against a table or stage schema; raise `DataValidationError` on any failure.

    The message names the table (or stage), the column, the check and shows the first offending
    rows (at most `MAX_FAILURE_ROWS` per check). ``known_symbols`` adds the referential check.
    """
    violations = frame_violations(df, schema_name_or_table, known_symbols=known_symbols)
    name = _schema_object(schema_name_or_table).name or "frame"
    raise_for_violations(violations, name)


# ---------------------------------------------------------------------------------------------
# Array engine
# ---------------------------------------------------------------------------------------------

NULL_CODE = -1  # code of a NULL text value
# A coded text value missing from its codes gets a code <= UNKNOWN_CODE derived from its
# hash, so that distinct unknown symbols stay distinct (the storage-order check groups by symbol).
UNKNOWN_CODE = -2
_NAT = np.iinfo("int64").min


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class ArrayRows:
    """Rows of one contract table fetched as numpy arrays, in storage (SQLite rowid) order.

    ``values[c]`` per contract column, [N] each: REAL -> float64 (NULL -> NaN); ``timestamp`` ->
    datetime64[us] (NaT where NULL, unparseable or zoned); a TEXT column with a codes type -> int64
    code (`NULL_CODE` for NULL, <= `UNKNOWN_CODE` when not among the codes); any other column ->
    uint64 hash of the value (equality only). ``null[c]``: [N] bool, the value is NULL in SQLite.
    ``zoned``: [N] bool, the timestamp text carries a UTC offset or zone (all False without one).
    """

    table: str
    rid: np.ndarray
    values: dict[str, np.ndarray]
    null: dict[str, np.ndarray]
    zoned: np.ndarray

    def __len__(self) -> int:
        return len(self.rid)

    def frame(self) -> pd.DataFrame:
        """The arrays as a DataFrame without copying (what dataframe checks run on)."""
        return pd.DataFrame(self.values, copy=False)


def register_codes(conn, name: str, keys: Iterable[str]) -> list[str]:
    """Create (or replace) DuckDB ENUM type ``name`` over the sorted distinct ``keys``; return the
    keys. A value's code is its position in that list (`fetch_rows` ``codes``)."""
    keys = sorted({str(k) for k in keys if k is not None and k == k})
    conn.execute(f"DROP TYPE IF EXISTS {name}")
    conn.register(f"{name}_keys", pd.DataFrame({"key": pd.Series(keys, dtype=object)}))
    try:
        conn.execute(f"CREATE TYPE {name} AS ENUM (SELECT key FROM {name}_keys ORDER BY key)")
    finally:
        conn.unregister(f"{name}_keys")
    return keys


def fetch_rows(conn, table: str, *, codes: dict[str, str] | None = None, where: str = "",
               params: list | None = None) -> ArrayRows:
    """One scan of ``market.<table>`` straight into numpy arrays (see `ArrayRows`).

    ``codes`` maps TEXT columns to ENUM types made by `register_codes`. ``where`` may
    filter on the table's columns (raw values) and on ``ts`` (the parsed timestamp), with ``?``
    parameters. The timestamp is parsed by DuckDB (`contract.timestamp_sql`); nothing is staged.
    """
    from plusultra_core.data.duck import MARKET

    spec, codes = TABLES[table], codes or {}
    has_ts = "timestamp" in spec.column_names
    cols = ", ".join(f"t.{_q(c)}" for c in spec.column_names)
    ts_sql = contract.timestamp_sql("t.timestamp") if has_ts else "NULL"
    zoned_sql = contract.zoned_sql("t.timestamp") if has_ts else "FALSE"
    inner = f"SELECT t.rowid AS rid, {cols}, {ts_sql} AS ts, {zoned_sql} AS zoned FROM {MARKET}.{table} t"
    if where:
        inner = f"SELECT * FROM ({inner}) {where}"
    proj = ["r.rid", "r.zoned"]
    for col in spec.columns:
        c, out = _q(col.name), _q("v_" + col.name)
        if col.name == "timestamp":
            proj.append(f"coalesce(epoch_us(r.ts), CAST({_NAT} AS BIGINT)) AS {out}")
        elif col.sqltype == "REAL":
            proj.append(f"r.{c} AS {out}")
        elif col.name in codes:
            # an ENUM cast, not a join: a join would give up the scan's row order
            proj.append(f"CASE WHEN r.{c} IS NULL THEN {NULL_CODE} ELSE coalesce(enum_code(TRY_CAST(r.{c} AS "
                        f"{codes[col.name]}))::BIGINT, {UNKNOWN_CODE} - (hash(r.{c}) % 1000000007)::BIGINT) "
                        f"END AS {out}")
        else:
            proj.append(f"hash(r.{c}) AS {out}")
        if col.sqltype != "REAL":  # a REAL NULL is NaN (SQLite cannot store a NaN)
            proj.append(f"r.{c} IS NULL AS {_q('n_' + col.name)}")
    # Arrow, not fetchnumpy: DuckDB builds Arrow batches in parallel and numeric columns convert
    # without a copy (measured 0.65 s vs 1.0 s for 1M series rows); NULL only in REAL columns
    tbl = conn.execute(f"SELECT {', '.join(proj)} FROM ({inner}) r", params or []).to_arrow_table()
    arr = {name: tbl.column(name).to_numpy() for name in tbl.column_names}
    rid = np.asarray(arr["rid"], dtype=np.int64)
    # DuckDB preserves the scan's (rowid) order; restore it should that ever change
    order = np.argsort(rid, kind="stable") if len(rid) > 1 and not (rid[1:] > rid[:-1]).all() else None
    zoned = np.asarray(arr["zoned"], dtype=bool)
    values, null = {}, {}
    for col in spec.columns:
        v = arr["v_" + col.name]
        if col.name == "timestamp":
            v = v.astype(np.int64, copy=False).view("datetime64[us]")
        elif col.sqltype == "REAL":
            v = v.astype(np.float64, copy=False)
        else:
            v = v.astype(np.int64 if col.name in codes else np.uint64, copy=False)
        n = np.isnan(v) if col.sqltype == "REAL" else np.asarray(arr["n_" + col.name], dtype=bool)
        values[col.name], null[col.name] = (v, n) if order is None else (v[order], n[order])
    return ArrayRows(table, rid if order is None else rid[order], values, null,
                     zoned if order is None else zoned[order])


def _column_check(check: pa.Check, column: str) -> Callable[[ArrayRows], np.ndarray]:
    """pandera's own column check on a fetched float column; [N] True where violated."""
    def run(rows: ArrayRows) -> np.ndarray:
        values = rows.values[column]
        out = check(pd.Series(values, copy=False)).check_output  # NULLs dropped (ignore_na)
        bad = np.zeros(len(values), dtype=bool)
        if isinstance(out, pd.Series):
            bad[out.index.to_numpy()[~out.to_numpy(dtype=bool)]] = True
        elif not out:  # a scalar verdict fails every non-NULL row
            bad = ~rows.null[column]
        return bad
    return run


def _frame_check(check: pa.Check) -> Callable[[ArrayRows], np.ndarray]:
    """pandera's own dataframe check on the fetched arrays (symbol as a code, timestamp parsed)."""
    def run(rows: ArrayRows) -> np.ndarray:
        out = check(rows.frame()).check_output
        if isinstance(out, pd.Series):
            return ~out.to_numpy(dtype=bool)
        return np.full(len(rows), not out)
    return run


def _twin(name: str, column: str) -> Callable[[ArrayRows], np.ndarray]:
    twin = schemas.ARRAY_TWINS[name]
    return lambda rows: twin(rows.values[column], rows.null[column], rows.zoned)


def array_checks(table: str) -> list[tuple[str, str, Callable[[ArrayRows], np.ndarray]]]:
    """(column, check label, runner) for every check of ``table``'s pandera schema.

    A runner maps `ArrayRows` to [N] bool, True on violating rows. Column checks on REAL columns
    are pandera's own; checks on text columns need a `schemas.ARRAY_TWINS` entry, else this
    raises `NotImplementedError` (a programming error, asserted by a test).
    """
    schema = schemas.TABLE_SCHEMAS[table].to_schema()
    real = {c.name for c in TABLES[table].columns if c.sqltype == "REAL"}
    out = []
    for name, col in schema.columns.items():
        if not col.nullable:
            out.append((name, "not_nullable", _twin("not_nullable", name)))
        for chk in col.checks:
            label = chk.error or chk.name
            if chk.name in schemas.ARRAY_TWINS:
                out.append((name, label, _twin(chk.name, name)))
            elif name in real:
                out.append((name, label, _column_check(chk, name)))
            else:
                raise NotImplementedError(f"check '{label}' on {table}.{name} has no array twin in "
                                          "schemas.ARRAY_TWINS (the engine fetches no text)")
    for chk in schema.checks:
        out.append((schemas.CHECK_COLUMNS[chk.name], chk.name, _frame_check(chk)))
    return out


def rows_by_rowid(conn, table: str, rids: np.ndarray) -> pd.DataFrame:
    """The raw rows (``rowid`` + contract columns) of ``market.<table>`` with these rowids."""
    from plusultra_core.data.duck import MARKET

    cols = ", ".join(_q(c) for c in TABLES[table].column_names)
    return conn.execute(f"SELECT rowid AS rowid, {cols} FROM {MARKET}.{table} WHERE rowid IN "
                        "(SELECT unnest(?::BIGINT[])) ORDER BY rowid",
                        [np.asarray(rids, dtype=np.int64).tolist()]).df()


def array_violations(conn, rows: ArrayRows, *, known_symbols: bool = False) -> list[Violation]:
    """Run the table's checks on fetched rows; only a failing check fetches its first rows.

    ``known_symbols``: ``symbol`` was coded against the known symbols (`fetch_rows` ``codes``),
    so a code <= `UNKNOWN_CODE` fails the referential check.
    """
    table = rows.table
    checks = array_checks(table)
    failed = [(column, label, bad) for column, label, run in checks if (bad := run(rows)).any()]
    if known_symbols:
        bad = rows.values["symbol"] <= UNKNOWN_CODE
        if bad.any():
            failed.append(("symbol", KNOWN_SYMBOL, bad))
    failed.sort(key=lambda f: f[1] == "timestamps_increasing")  # checks of single rows first (stable)
    out = [Violation(table, column, label, int(bad.sum()),
                     rows_by_rowid(conn, table, rows.rid[bad][:MAX_FAILURE_ROWS]))
           for column, label, bad in failed]
    # strictly increasing timestamps per symbol admit no duplicate (symbol, timestamp) key: the
    # duplicate check runs only when that check is absent or it (or the parsing) failed
    unique = schemas.TABLE_SCHEMAS[table].to_schema().unique
    ordered = any(label == "timestamps_increasing" for _, label, _ in checks)
    if unique and (not ordered or {v.check for v in out} & {"timestamps_increasing", "iso_timestamp"}):
        out += _duplicate_keys(conn, rows, list(unique))
    return out


def _duplicate_keys(conn, rows: ArrayRows, key: list[str]) -> list[Violation]:
    """Rows sharing a (non-NULL) primary key. A numpy screen on the fetched key arrays finds the
    candidates (equal raw keys have equal codes/parsed times/hashes); their raw text decides."""
    valid = ~np.logical_or.reduce([rows.null[k] for k in key])
    idx = np.flatnonzero(valid)
    arrays = [rows.values[k][idx].view(np.int64) for k in key]
    order = np.lexsort(arrays[::-1])
    same = np.ones(max(len(idx) - 1, 0), dtype=bool)
    for a in arrays:
        same &= a[order][1:] == a[order][:-1]
    candidates = np.zeros(len(idx), dtype=bool)
    candidates[order[1:][same]] = True
    candidates[order[:-1][same]] = True
    if not candidates.any():
        return []
    raw = rows_by_rowid(conn, rows.table, rows.rid[idx[candidates]])
    dup = raw[raw.duplicated(subset=key, keep=False)]
    if dup.empty:
        return []
    return [Violation(rows.table, ", ".join(key), "multiple_fields_uniqueness", len(dup),
                      dup.head(MAX_FAILURE_ROWS).reset_index(drop=True))]


# ---------------------------------------------------------------------------------------------
# Whole database
# ---------------------------------------------------------------------------------------------

def _stats(conn, relation: str, table: str) -> tuple[int, int | None, str | None, str | None]:
    names = TABLES[table].column_names
    sym = "symbol" if "symbol" in names else ("benchmark" if "benchmark" in names else None)
    sym_sql = f"count(DISTINCT {sym})" if sym else "NULL"
    ts_sql = "min(timestamp), max(timestamp)" if "timestamp" in names else "NULL, NULL"
    rows, nsym, first, last = conn.execute(f"SELECT count(*), {sym_sql}, {ts_sql} FROM {relation}").fetchone()
    return int(rows), (int(nsym) if nsym is not None else None), first, last


def validate_database(path: str | Path) -> DatabaseReport:
    """Check a market database's structure and every row of every contract table. Never raises
    for bad input: problems are in the report (`DatabaseReport.ok`, `.to_text()`, `.to_dict()`)."""
    import duckdb

    from plusultra_core.data import duck

    report = DatabaseReport(str(path))
    try:
        sq = contract.open_readonly(path)
    except ContractError as exc:
        report.usable = False
        report.problems.append(str(exc))
        return report
    try:
        report.problems += contract.missing_tables_and_columns(sq)
        existing = {r[0] for r in sq.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
    except Exception as exc:  # e.g. a corrupt file with a valid header
        report.usable = False
        report.problems.append(f"{path}: unreadable SQLite database: {exc}")
        return report
    finally:
        sq.close()

    conn = duck.connect(path)
    try:
        known = None
        for table in contract.CONTRACT_TABLES:
            if table not in existing:
                continue
            tr = report.tables[table] = TableReport(table)
            missing = [p for p in report.problems if p.startswith(f"table '{table}':")]
            if missing:
                tr.skipped = "; ".join(missing)
                continue
            try:
                tr.rows, tr.symbols, tr.first, tr.last = _stats(conn, f"{duck.MARKET}.{table}", table)
                if table == ASSETS:
                    known = register_codes(conn, "known_codes", (r[0] for r in conn.execute(
                        f"SELECT DISTINCT symbol FROM {duck.MARKET}.{ASSETS}").fetchall()))
                ref = known if table in REFERENCING_TABLES else None
                if table in ARRAY_ENGINE_TABLES:
                    rows = fetch_rows(conn, table, codes={"symbol": "known_codes"} if ref is not None else None)
                    tr.violations = array_violations(conn, rows, known_symbols=ref is not None)
                else:
                    tr.violations = _small_table_violations(conn, table, ref)
            except duckdb.Error as exc:
                tr.skipped = _unreadable_reason(path, table, exc)
    finally:
        conn.close()
    return report


def _unreadable_reason(path, table: str, exc: Exception) -> str:
    """Why DuckDB could not read ``table``: the text cells in numeric columns (table, column,
    rowid, value) when that is the cause, else DuckDB's first line."""
    from plusultra_core.data.contract import describe_mistyped, first_mistyped

    mistyped = first_mistyped(path, [table])
    found = mistyped[1] if mistyped else None
    return describe_mistyped(table, found) if found else f"unreadable: {str(exc).splitlines()[0]}"


def _small_table_violations(conn, table: str, known: list[str] | None) -> list[Violation]:
    """pandera engine on a small table; the index is the SQLite rowid, shown with failing rows."""
    from plusultra_core.data.duck import MARKET

    present = contract.present_columns(conn, table, prefix=f"{MARKET}.")
    cols = ", ".join(_q(c) for c in present)
    df = conn.execute(f"SELECT rowid AS rowid, {cols} FROM {MARKET}.{table} ORDER BY rowid").df().set_index("rowid")
    # an empty or all-NULL TEXT column arrives as object dtype: give it the text dtype it has
    for col in TABLES[table].columns:
        if col.name in present and col.sqltype == "TEXT" and df[col.name].dtype == object:
            df[col.name] = df[col.name].astype("str")
    violations = frame_violations(df, table, known_symbols=known)
    for v in violations:
        v.table = table
    return violations


def validation_summary(panel: pd.DataFrame) -> dict[str, dict]:
    """Per symbol of a panel: rows, first/last timestamp (ISO) and a status (``ok`` or what failed)."""
    if panel.empty:
        return {}
    sym = panel.index.get_level_values("symbol")
    ts = panel.index.get_level_values("timestamp")
    prices = panel[list(contract.OHLC)].to_numpy("float64")
    volume = panel["volume"].to_numpy("float64")
    # [N] row is bad when any price is non-finite / non-positive or volume is negative / missing
    bad = ~(np.isfinite(prices) & (prices > 0)).all(axis=1) | ~(np.isfinite(volume) & (volume >= 0))
    frame = pd.DataFrame({"symbol": sym, "ts": ts, "bad": bad})
    agg = frame.groupby("symbol", sort=True).agg(rows=("ts", "size"), first=("ts", "min"),
                                                   last=("ts", "max"), bad=("bad", "sum"))
    return {str(s): {"rows": int(r.rows), "first": r.first.isoformat(), "last": r.last.isoformat(),
                     "status": "ok" if r.bad == 0 else f"{int(r.bad)} invalid row(s)"}
            for s, r in agg.iterrows()}
