"""build_window_frame: ordering, dtypes, zero-filling with valid=False, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plusultra_core.errors import DataValidationError
from plusultra_core.windows import build_window_frame

from .synthetic import FEATURES, make_panel


def test_frame_is_symbol_major_float32_with_valid_flag():
    panel = make_panel()
    frame = build_window_frame(panel, FEATURES)
    assert list(frame.columns) == ["timestamp", "symbol", *FEATURES, "valid"]  # ret_1d listed once
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert all(frame[c].dtype == np.float32 for c in FEATURES)
    assert frame["valid"].dtype == bool
    # Sorted by (symbol, timestamp), same rows as the panel.
    assert len(frame) == len(panel)
    keys = list(zip(frame["symbol"], frame["timestamp"]))
    assert keys == sorted(keys)
    # Values follow their keys through the re-sort.
    back = frame.set_index(["timestamp", "symbol"]).sort_index()
    np.testing.assert_allclose(back["noise"].to_numpy(), np.nan_to_num(panel["noise"].to_numpy()), rtol=1e-6)


def test_non_finite_features_become_zero_and_invalid_and_nan_returns_are_kept():
    panel = make_panel()
    panel.loc[panel.index[10], "ma_ratio_5"] = np.inf
    frame = build_window_frame(panel, ["ma_ratio_5", "noise"])
    src = panel.reindex(pd.MultiIndex.from_arrays([frame["timestamp"], frame["symbol"]]))
    bad_feat = ~np.isfinite(src[["ma_ratio_5", "noise"]].to_numpy()).all(axis=1)
    bad_ret = ~np.isfinite(src["ret_1d"].to_numpy())
    np.testing.assert_array_equal(frame["valid"].to_numpy(), ~(bad_feat | bad_ret))
    assert (frame.loc[~np.isfinite(src["ma_ratio_5"].to_numpy()), "ma_ratio_5"] == 0).all()
    assert np.isfinite(frame[["ma_ratio_5", "noise"]].to_numpy()).all()
    assert frame["ret_1d"].isna().sum() == bad_ret.sum() == 3  # first bar of each symbol, NaN kept
    assert bad_feat.sum() > 3  # warm-up, the inf and the hole all flagged


def test_float32_overflow_marks_row_invalid():
    panel = make_panel(n_symbols=1, holes=False)
    panel.iloc[20, panel.columns.get_loc("noise")] = 1e300  # finite in float64, inf in float32
    frame = build_window_frame(panel, FEATURES)
    assert not frame["valid"].iloc[20] and frame["noise"].iloc[20] == 0


def test_bad_inputs_name_the_problem():
    panel = make_panel()
    with pytest.raises(DataValidationError, match="missing.*'nope'"):
        build_window_frame(panel, ["nope", "noise"])
    with pytest.raises(DataValidationError, match="ret_x"):
        build_window_frame(panel, ["noise"], return_column="ret_x")
    with pytest.raises(DataValidationError, match=r"\(timestamp, symbol\)"):
        build_window_frame(panel.reset_index(), FEATURES)
    with pytest.raises(DataValidationError, match="duplicate feature"):
        build_window_frame(panel, ["noise", "noise"])
    dup = pd.concat([panel, panel.iloc[:2]])
    with pytest.raises(DataValidationError, match="duplicate") as info:
        build_window_frame(dup, FEATURES)
    assert info.value.check == "unique" and len(info.value.failure_cases) == 2
