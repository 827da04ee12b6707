"""One ``/predict`` request: checks, the agent's frame and risk, and their JSON columns.

The agent is the one the `inference_frames` asset runs (`MarketNNPlusUltraAgent.predict`), so a
day served here equals the stored frame of that day for the same checkpoint. Requests are checked
before any work, each failure a `RequestError` naming the field: too many symbols, a range longer
than the limit or backwards, a day after the database's last bar, symbols the database (or the
bars) does not have.

Caller-supplied bars replace the database for that request: they are validated with the
``series`` contract (the checks ingest runs: OHLC consistency, positive prices, increasing
timestamps per symbol, no duplicates, naive timestamps, nothing in the future), written to a
private contract database in a temporary directory that is removed afterwards whatever happens,
and predicted from there. Features that need more than bars (indicators, market-wide series)
make the request fail naming them; cross-sectional ranks are over the symbols sent.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core.errors import CheckpointError, DataValidationError
from plusultra_pipeline.serving.errors import RequestError
from plusultra_pipeline.serving.schemas import BAR_COLUMNS, Bars, PredictRequest
from plusultra_pipeline.serving.settings import ServeSettings


@dataclass(frozen=True)
class DatabaseFacts:
    symbols: frozenset[str]   # tradable symbols
    last_day: dt.date | None  # last bar


def database_facts(path: Path) -> DatabaseFacts:
    """Tradable symbols and last bar of ``path``, re-read only when the file changes."""
    try:
        st = os.stat(path)
    except OSError as exc:  # the file went away under a running server: its problem, not the caller's
        raise RequestError("database", f"the server's database is unavailable ({exc.strerror})", status=503) from exc
    return _facts(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _facts(path: str, mtime_ns: int, size: int) -> DatabaseFacts:
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

    with SQLiteMarketDataset(path) as dataset:
        symbols = frozenset(dataset.symbols())
        last = dataset.date_range()[1] if symbols else None
    return DatabaseFacts(symbols, None if last is None or pd.isna(last) else pd.Timestamp(last).date())


def check_request(request: PredictRequest, settings: ServeSettings) -> list[str] | None:
    """The request's symbols (deduplicated, in order) after the limits; None means all."""
    if request.end is not None and request.end < request.date:
        raise RequestError("body.end", f"{request.end} is before date {request.date}")
    days = ((request.end or request.date) - request.date).days
    if days > settings.max_days:
        raise RequestError("body.end", f"the range {request.date}..{request.end} spans {days} days; "
                                       f"at most {settings.max_days} per request")
    if request.symbols is None:
        return None
    symbols = list(dict.fromkeys(request.symbols))
    if not symbols:
        raise RequestError("body.symbols", "empty list; omit the field for every tradable symbol")
    if len(symbols) > settings.max_symbols:
        raise RequestError("body.symbols", f"{len(symbols)} symbols; at most {settings.max_symbols} per request")
    return symbols


def _check_against(facts: DatabaseFacts, symbols, request: PredictRequest, what: str) -> None:
    if symbols is not None:
        unknown = [s for s in symbols if s not in facts.symbols]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "")
            raise RequestError("body.symbols", f"unknown or non-tradable symbol(s) in {what}: {shown}")
    if facts.last_day is not None and request.date > facts.last_day:
        raise RequestError("body.date", f"{request.date} is after the last bar in {what} ({facts.last_day})")


def bars_frame(bars: Bars) -> pd.DataFrame:
    """The bars as a ``series`` frame, checked with the table's contract (`DataValidationError`)."""
    from plusultra_core.data.contract import SERIES
    from plusultra_core.data.validation import validate_frame

    frame = pd.DataFrame({c: getattr(bars, c) for c in BAR_COLUMNS})
    validate_frame(frame, SERIES, known_symbols=frame["symbol"].unique())
    return frame


def write_bars_database(frame: pd.DataFrame, path: Path) -> Path:
    """A contract database at ``path`` holding ``frame``'s bars (one tradable equity per symbol)."""
    from plusultra_core.data.contract import ASSETS, SERIES, TABLES
    from plusultra_core.data.sqlite_writer import atomic_database

    def insert(table):
        cols = TABLES[table].column_names
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    symbols = sorted(frame["symbol"].unique())
    with atomic_database(path) as conn:
        n = len(symbols)
        conn.executemany(insert(ASSETS), zip(symbols, symbols, *(itertools.repeat(v, n) for v in
                                                                 ("equity", None, "USD", "request", 1, 0))))
        conn.executemany(insert(SERIES), zip(*(frame[c].tolist() for c in BAR_COLUMNS)))  # C-level zip
    return path


def run_prediction(model, request: PredictRequest, database: Path | None, settings: ServeSettings,
                   frames=None):
    """``(AgentResult, in_sample, warnings)`` for ``request`` on ``model`` (a `LoadedModel`);
    ``frames`` (a `WindowFrames`) serves database requests from the universe's shared read."""
    symbols = check_request(request, settings)
    if request.bars is None:
        if database is None:
            raise RequestError("body.bars", "this server has no database (--db); send the bars to predict from")
        _check_against(database_facts(database), symbols, request, "the database")
        return _predict(model, database, request, symbols, "the database", frames)
    try:
        frame = bars_frame(request.bars)
    except DataValidationError as exc:
        raise RequestError("body.bars", str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="plusultra-bars-") as tmp:  # removed on any exit
        path = write_bars_database(frame, Path(tmp) / "bars.sqlite")
        _check_against(database_facts(path), symbols, request, "the bars")
        try:
            return _predict(model, path, request, symbols, "the bars")
        except CheckpointError as exc:  # the bars lack inputs of the checkpoint's features
            text = str(exc).replace(str(path), "the bars")
            raise RequestError("body.bars", text.split(": ", 1)[1] if ": " in text else text) from exc


def _predict(model, path: Path, request: PredictRequest, symbols, what: str, frames=None):
    from plusultra_core.lineage import train_range

    agent = model.agent
    end = request.end or request.date
    try:
        if frames is not None and frames.entries:
            frame, version = frames.get(model, path, request.date, end)
            if symbols is not None:
                frame = frame[frame["symbol"].isin(symbols)]
            result = agent.predict_window_frame(frame, str(request.date), str(end), version)
        else:
            result = agent.predict(path, str(request.date), str(end), symbols=symbols)
    except OSError as exc:
        raise RequestError("database", f"the server's database is unavailable ({exc.strerror})", status=503) from exc
    except DataValidationError as exc:
        field = "body.bars" if what == "the bars" else "database"
        raise RequestError(field, f"{what} fail validation: {exc}", status=422 if what == "the bars" else 503) from exc
    warnings = []
    first, last = train_range(agent.sidecar) or (None, None)
    in_sample = bool(last and str(request.date) <= last and (first is None or str(end) >= first))
    if in_sample:
        warnings.append(f"{request.date}..{end} overlaps the checkpoint's training range {first}..{last}: "
                        "those predictions are in-sample, not a forecast")
    if result.frame.empty:
        warnings.append(f"no predictions: no symbol has {agent.context_length} valid bars ending on "
                        f"{request.date}..{end} in {what} (a holiday, or less than {agent.history_rows} bars "
                        "of history?)")
    return result, in_sample, warnings


def frame_columns(frame: pd.DataFrame) -> dict[str, list]:
    """Column -> JSON-ready list (timestamps as ISO text, NaN/inf as None), one pass per column."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            ts = pd.DatetimeIndex(col)
            text = ts.strftime("%Y-%m-%d") if (ts == ts.normalize()).all() else ts.strftime("%Y-%m-%dT%H:%M:%S")
            out[name] = text.tolist()
        elif pd.api.types.is_float_dtype(col):
            values = col.to_numpy(np.float64)
            cells = values.astype(object)
            cells[~np.isfinite(values)] = None
            out[name] = cells.tolist()
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            out[name] = col.tolist()
        else:
            out[name] = col.astype(object).where(col.notna(), None).tolist()
    return out


def json_risk(risk: dict) -> dict:
    """The per-day portfolio dicts with non-finite numbers as None."""
    def cell(v):
        return None if isinstance(v, float) and not np.isfinite(v) else v

    return {day: {k: cell(v) for k, v in values.items()} for day, values in risk.items()}
