"""Helpers that turn core results into Dagster metadata values (tables, Markdown, paths)."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema


def table(frame: pd.DataFrame, max_rows: int = 200) -> MetadataValue:
    """A DataFrame as a Dagster table (strings/numbers only; first ``max_rows`` rows)."""
    frame = frame.head(max_rows)
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = ("int" if pd.api.types.is_integer_dtype(dtype) else
                "float" if pd.api.types.is_float_dtype(dtype) else
                "bool" if pd.api.types.is_bool_dtype(dtype) else "string")
        columns.append(TableColumn(str(name), kind))
    records = []
    for row in frame.itertuples(index=False):
        values = {}
        for col, value in zip(frame.columns, row):
            if isinstance(value, float) and pd.isna(value):
                value = None
            elif not isinstance(value, (int, float, bool, str)) and value is not None:
                value = str(value)
            values[str(col)] = value
        records.append(TableRecord(values))
    return MetadataValue.table(records, schema=TableSchema(columns))


def date_range(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "empty"
    ts = frame.index.get_level_values("timestamp")
    return f"{ts.min():%Y-%m-%d} .. {ts.max():%Y-%m-%d}"
