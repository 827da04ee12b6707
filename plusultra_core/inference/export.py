"""Optional export of prediction frames into the market database's ``predictions`` table.

This is the one place the pipeline writes the user's SQLite file, and only when the user asks
(``plusultra infer --export`` or the inference asset's export switch). Every row is checked before
the file is opened for writing; the rows then go in ONE transaction (``BEGIN IMMEDIATE`` ...
``INSERT OR REPLACE`` ... ``COMMIT``, the table created inside it when missing), so a bad row or a
failure midway leaves the database exactly as it was.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core.data.contract import PREDICTIONS, TABLES
from plusultra_core.errors import ConfigError, ContractError, DataValidationError
from plusultra_core.timestamps import naive_utc_index

PROB_TOLERANCE = 1e-4      # |p_sell + p_hold + p_buy - 1| allowed (float32 softmax round-off)
_REQUIRED = ("timestamp", "symbol", "p_sell", "p_hold", "p_buy", "position", "expected_return")
_FLOATS = ("p_sell", "p_hold", "p_buy", "position", "expected_return")


def _fail(message: str, column: str, check: str, frame: pd.DataFrame, bad: np.ndarray) -> None:
    cases = frame.loc[bad, [c for c in ("timestamp", "symbol", column) if c in frame.columns]].head(5)
    first = cases.iloc[0].to_dict() if len(cases) else {}
    raise DataValidationError(f"{PREDICTIONS} export: {int(bad.sum())} row(s) {message}; first: {first}; "
                              "nothing was written", table=PREDICTIONS, column=column, check=check,
                              failure_cases=cases.reset_index(drop=True))


def _format_times(ts: pd.Series) -> np.ndarray:
    """Dates as ``YYYY-MM-DD`` (the ``series`` convention) when every time is midnight, else ISO."""
    idx = naive_utc_index(ts)
    fmt = "%Y-%m-%d" if (idx == idx.normalize()).all() else "%Y-%m-%dT%H:%M:%S"
    return np.asarray(idx.strftime(fmt), dtype=object)


def validate_predictions(frame: pd.DataFrame) -> None:
    """Raise `DataValidationError` (table ``predictions``, column, check, first bad rows) unless every
    row has finite values, probabilities in [0, 1] summing to 1 within `PROB_TOLERANCE`, a position
    in [-1, 1], a non-negative (or missing) predicted volatility and a unique (timestamp, symbol)."""
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{PREDICTIONS} export: frame lacks columns {missing}; nothing was written",
                                  table=PREDICTIONS, column=missing[0], check="columns_present")
    if frame["timestamp"].isna().any() or frame["symbol"].isna().any():
        _fail("have no timestamp or symbol", "timestamp", "not_null",
              frame, (frame["timestamp"].isna() | frame["symbol"].isna()).to_numpy())
    for col in _FLOATS:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(values)
        if bad.any():
            _fail(f"have a non-finite {col}", col, "finite", frame, bad)
    probs = frame[["p_sell", "p_hold", "p_buy"]].to_numpy(float)
    bad = ((probs < -PROB_TOLERANCE) | (probs > 1 + PROB_TOLERANCE)).any(axis=1)
    if bad.any():
        _fail("have a probability outside [0, 1]", "p_buy", "probability_range", frame, bad)
    bad = np.abs(probs.sum(axis=1) - 1.0) > PROB_TOLERANCE
    if bad.any():
        _fail(f"have probabilities not summing to 1 (tolerance {PROB_TOLERANCE})", "p_hold", "probability_sum",
              frame, bad)
    pos = frame["position"].to_numpy(float)
    bad = np.abs(pos) > 1.0
    if bad.any():
        _fail("have a position outside [-1, 1]", "position", "position_range", frame, bad)
    if "predicted_volatility" in frame.columns:
        vol = pd.to_numeric(frame["predicted_volatility"], errors="coerce").to_numpy(float)
        bad = np.isinf(vol) | (vol < 0)
        if bad.any():
            _fail("have an infinite or negative predicted_volatility", "predicted_volatility", "volatility",
                  frame, bad)
    dup = frame.duplicated(["timestamp", "symbol"]).to_numpy()
    if dup.any():
        _fail("repeat a (timestamp, symbol) pair", "symbol", "unique_keys", frame, dup)


def export_predictions(db_path: str | Path, frame: pd.DataFrame, checkpoint_id: str) -> int:
    """Write ``frame`` into ``predictions`` of ``db_path`` in one transaction; return rows written.

    Rows are keyed by (timestamp, symbol, checkpoint_id) and replace earlier rows with the same
    key. The table is created if missing (contract DDL). Invalid rows raise `DataValidationError`
    before the database is opened for writing; a missing file or a ``predictions`` table with other
    columns raises `ContractError`. In every error case nothing is written.
    """
    db_path = Path(db_path)
    if not checkpoint_id or not isinstance(checkpoint_id, str):
        raise ConfigError(f"{PREDICTIONS} export: checkpoint_id must be a non-empty string, got {checkpoint_id!r}")
    if not db_path.is_file():
        raise ContractError(f"{PREDICTIONS} export: database not found: {db_path}")
    validate_predictions(frame)
    if frame.empty:
        return 0
    spec = TABLES[PREDICTIONS]
    n = len(frame)
    vol = (pd.to_numeric(frame["predicted_volatility"], errors="coerce").to_numpy(float)
           if "predicted_volatility" in frame.columns else np.full(n, np.nan))
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    columns = {
        "timestamp": _format_times(frame["timestamp"]), "symbol": frame["symbol"].astype(str).to_numpy(object),
        "checkpoint_id": np.full(n, checkpoint_id, dtype=object),
        **{c: frame[c].to_numpy(float) for c in _FLOATS},
        "predicted_volatility": np.where(np.isnan(vol), None, vol).astype(object),
        "created_at": np.full(n, created, dtype=object),
    }
    # python scalars per row for sqlite3 (tolist converts numpy floats in C, not per row in Python)
    rows = list(zip(*(np.asarray(columns[c], dtype=object).tolist() if columns[c].dtype == object
                      else columns[c].tolist() for c in spec.column_names)))
    sql = (f"INSERT OR REPLACE INTO {PREDICTIONS} ({', '.join(spec.column_names)}) "
           f"VALUES ({', '.join('?' for _ in spec.column_names)})")
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(spec.ddl())
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({PREDICTIONS})")}
            lacking = [c for c in spec.column_names if c not in have]
            if lacking:
                raise ContractError(f"{db_path}: existing table '{PREDICTIONS}' lacks columns {lacking}")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return n
