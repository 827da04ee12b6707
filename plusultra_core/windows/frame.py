"""Feature panel -> window frame: float32 columns, symbol-major order, and a per-row valid flag.

The window frame is what the window stage stores and what ``SlidingWindowDataset.from_frame``
reads: one row per (symbol, timestamp), sorted by symbol then time so each symbol's rows are one
contiguous block (a window never needs to jump). Non-finite feature values (warm-up NaNs of long
lookbacks, overflow in the float32 cast) become 0.0 and mark the row invalid; windows only ever
use valid rows, so the zeros are never seen by a model. The return column keeps its NaNs: it is
the target stream, and a target must be a real return or no sample is made.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core.data.panel_index import check_panel_index
from plusultra_core.errors import DataValidationError

STAGE = "window_frame"


def _check_input(features: pd.DataFrame, feature_names: Sequence[str], return_column: str) -> None:
    check_panel_index(features.index, STAGE)
    if len(feature_names) == 0:
        raise DataValidationError(f"{STAGE}: no feature names given", table=STAGE, check="feature_names")
    if len(set(feature_names)) != len(feature_names):
        dup = sorted({n for n in feature_names if list(feature_names).count(n) > 1})
        raise DataValidationError(f"{STAGE}: duplicate feature names {dup}", table=STAGE, check="feature_names")
    missing = [c for c in [*feature_names, return_column] if c not in features.columns]
    if missing:
        raise DataValidationError(
            f"{STAGE}: columns missing from the feature frame: {missing} "
            f"(available: {list(features.columns)[:20]})",
            table=STAGE, column=missing[0], check="columns_present",
        )


def build_window_frame(features: pd.DataFrame, feature_names: Sequence[str],
                       return_column: str = "ret_1d") -> pd.DataFrame:
    """Turn a feature panel into the window frame.

    Args:
        features: panel-indexed frame ``(timestamp, symbol)`` holding ``feature_names`` and
            ``return_column`` (any row order; duplicates are an error).
        feature_names: feature columns, in the order the model sees them.
        return_column: per-bar return used for targets (``close_t / close_{t-1} - 1``).

    Returns:
        DataFrame with columns ``timestamp`` (datetime64[ns]), ``symbol``, the features (float32,
        non-finite -> 0.0), ``return_column`` (float32, NaN kept; listed once even if it is also a
        feature), ``valid`` (bool: every feature and the return finite), sorted by (symbol, timestamp)
        with a fresh RangeIndex.

    Raises:
        DataValidationError: wrong index, missing columns, duplicate names or keys.
    """
    feature_names = list(feature_names)
    _check_input(features, feature_names, return_column)

    # One sort permutation for every column: symbol-major, then time.
    ts = features.index.get_level_values("timestamp").to_numpy().astype("datetime64[ns]")
    sym_codes, sym_names = pd.factorize(features.index.get_level_values("symbol"), sort=True)
    order = np.lexsort((ts, sym_codes))

    out: dict[str, np.ndarray] = {
        "timestamp": ts[order],
        "symbol": np.asarray(sym_names, dtype=object)[sym_codes[order]],
    }
    valid = np.ones(len(order), dtype=bool)
    for name in feature_names:
        with np.errstate(over="ignore"):  # float64 beyond float32 range -> inf -> flagged below
            col = features[name].to_numpy(dtype=np.float32, na_value=np.nan)[order]
        finite = np.isfinite(col)
        valid &= finite
        if name != return_column:
            col[~finite] = 0.0
        out[name] = col
    with np.errstate(over="ignore"):
        ret = features[return_column].to_numpy(dtype=np.float32, na_value=np.nan)[order]
    valid &= np.isfinite(ret)
    out[return_column] = ret  # listed once: if it is also a feature the dict key is reused
    out["valid"] = valid
    frame = pd.DataFrame(out)
    frame["symbol"] = frame["symbol"].astype(str)
    return frame
