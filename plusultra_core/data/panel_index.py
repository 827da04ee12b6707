"""The index every panel frame has -- the validated bars, the features' input and output, the
window stage's input -- and its one check.

`ValidatedBarsSchema` states it as a pandera model for the extract; the stages after it check it
here, directly: pandera on a 125,000-row, 56-feature panel took 0.38 s against 5 ms for this
function (building the window frame itself takes 0.09 s), on every feature and window run. Stage
models for the feature panel and the window frame existed but were never used, and contradicted
the frames (any row order, NaN targets): they are gone, so this is the one owner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plusultra_core.errors import DataValidationError

PANEL_INDEX = ("timestamp", "symbol")


def check_panel_index(index: pd.Index, table: str) -> None:
    """Unique ``(timestamp, symbol)`` pairs, datetime timestamps, no missing key.

    Raises `DataValidationError` naming ``table``, the level and the first duplicate keys.
    """
    if not isinstance(index, pd.MultiIndex) or tuple(index.names) != PANEL_INDEX:
        raise DataValidationError(
            f"{table}: must be indexed by a 2-level MultiIndex (timestamp, symbol), got "
            f"{type(index).__name__} with names {list(index.names)}",
            table=table, column="index", check="multiindex(timestamp, symbol)")
    if not pd.api.types.is_datetime64_any_dtype(index.levels[0]):
        raise DataValidationError(f"{table}: index level timestamp must be datetime64, got {index.levels[0].dtype}",
                                  table=table, column="timestamp", check="datetime64")
    for level, name in enumerate(index.names):
        if (np.asarray(index.codes[level]) < 0).any():
            raise DataValidationError(f"{table}: missing (NaN) {name} keys", table=table, column=name,
                                      check="not_null")
    dup = index.duplicated()
    if dup.any():
        cases = index[dup][:5].to_frame(index=False)
        raise DataValidationError(
            f"{table}: {int(dup.sum())} duplicate (timestamp, symbol) keys, first: "
            f"{list(map(tuple, cases.itertuples(index=False)))}",
            table=table, column="index", check="unique", failure_cases=cases)
