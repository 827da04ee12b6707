"""Typed requests and responses of the agent service (what ``/docs`` shows).

Requests forbid unknown fields (a misspelt ``symbol`` is an error naming it, not silently all
symbols) and take dates strictly as ``YYYY-MM-DD`` text. The prediction frame travels
column-wise -- ``{"symbol": [...], "position": [...], ...}``, the frame's own columns in its own
order, NaN as null -- so 500 symbols cost one list per column, not one object per row, and the
caller rebuilds it with ``pandas.DataFrame(body["frame"])``. Caller-supplied bars come the same
way, with the ``series`` table's columns.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

Symbol = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _day_text(value):
    """Dates only as ``YYYY-MM-DD`` text (pydantic alone would read a number as seconds since 1970)."""
    if not isinstance(value, str) or not _DAY.match(value):
        raise ValueError("expected a date YYYY-MM-DD")
    return value


# bounded: pandas timestamps (and the agent's history padding before a day) end at 1677 and 2262
Day = Annotated[dt.date, BeforeValidator(_day_text), Field(ge=dt.date(1900, 1, 1), le=dt.date(2199, 12, 31))]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Cell = Union[float, str, None]

BAR_COLUMNS = ("symbol", "timestamp", "open", "high", "low", "close", "volume")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bars(_Request):
    """Recent OHLCV bars, column-wise with the ``series`` table's columns (equal lengths)."""

    symbol: list[Symbol]
    timestamp: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]]
    open: list[FiniteFloat]
    high: list[FiniteFloat]
    low: list[FiniteFloat]
    close: list[FiniteFloat]
    volume: list[FiniteFloat]

    @model_validator(mode="after")
    def _same_lengths(self):
        lengths = {c: len(getattr(self, c)) for c in BAR_COLUMNS}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"bars columns differ in length: {lengths}")
        if not lengths["symbol"]:
            raise ValueError("bars holds no rows")
        return self


class PredictRequest(_Request):
    """Symbols (default: every tradable symbol) and a decision day or an inclusive range."""

    symbols: Optional[list[Symbol]] = Field(None, description="Symbols to predict (default: all tradable).")
    date: Day = Field(description="Decision day YYYY-MM-DD (the first one when `end` is given).")
    end: Optional[Day] = Field(None, description="Last decision day YYYY-MM-DD (default: `date`).")
    bars: Optional[Bars] = Field(None, description="Bars to predict from instead of the server's database: "
                                 "every symbol's history, validated like the `series` table. They must "
                                 "cover the model's warm-up (see /config `history_rows`).")


class ReloadRequest(_Request):
    """Which checkpoint to serve next: a cutoff of the store, or (empty body) the newest."""

    cutoff: Optional[str] = Field(None, description="Cutoff partition YYYY-MM-DD of the store "
                                  "(default: the newest complete one).", max_length=32)


class ModelInfo(BaseModel):
    source: str = Field(description="'store' or 'checkpoint'.")
    checkpoint: str = Field(description="What the frames' checkpoint column records.")
    checkpoint_id: str = Field(description="SHA-256 prefix of the weights.")
    lineage_id: str = Field(description="Dagster's data version of supervised_checkpoint[cutoff].")
    cutoff: Optional[str]
    members: list[str] = Field(description="Checkpoint files (one per seed of an ensemble).")
    architecture: Optional[str]
    train_range: Optional[list[Optional[str]]]
    created_at: Optional[str]
    loaded_at: str


class HealthResponse(BaseModel):
    status: str
    model: ModelInfo
    checkpoint_age_seconds: Optional[float]
    uptime_seconds: float


class Limits(BaseModel):
    max_symbols: int
    max_days: int
    max_body_bytes: int
    max_concurrent_predictions: int
    frame_cache_entries: int


class ConfigResponse(BaseModel):
    model: ModelInfo
    feature_names: list[str]
    context_length: int
    horizon: Optional[int]
    history_rows: int = Field(description="Bars per symbol needed before the first decision.")
    return_column: str
    zscore: bool
    risk_confidence: float
    risk_lookback: int
    database: Optional[str]
    stored_cutoffs: list[str]
    limits: Limits
    auth: bool


class PredictResponse(BaseModel):
    model: ModelInfo
    rows: int
    data_version: str = Field(description="Content hash of the bars read: the universe's bars over the "
                              "range's padded history (the shared read), or the subset's with --frame-cache 0, "
                              "or the bars sent.")
    in_sample: bool = Field(description="Some decision day is inside the checkpoint's training range.")
    warnings: list[str]
    frame: dict[str, list[Cell]] = Field(description="Column -> values, one per symbol × decision day.")
    risk: dict[str, dict[str, Cell]] = Field(description="Decision day -> portfolio risk analytics.")


class ReloadResponse(BaseModel):
    model: ModelInfo
    previous: ModelInfo
    changed: bool


class ErrorResponse(BaseModel):
    detail: str
    field: Optional[str] = None
