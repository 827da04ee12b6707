"""time_split: purge gap, no overlap between training targets and validation windows, curriculum-stable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plusultra_core.windows import SlidingWindowDataset, build_window_frame, time_split

from .synthetic import FEATURES, make_panel

_PANEL = make_panel(n_symbols=3, n_days=150)
_FRAME = build_window_frame(_PANEL, FEATURES)
_DAYS = np.sort(_FRAME["timestamp"].unique())


def _touched(ds, idx):
    """[len(idx), T + H] row indices each sample touches (full context, inputs and targets)."""
    first = ds.sample_end[idx] - ds.context_length
    return first[:, None] + np.arange(ds.context_length + ds.horizon)


@settings(max_examples=40, deadline=None)
@given(context=st.integers(2, 20), horizon=st.integers(1, 6), extra=st.integers(0, 5),
       cut1=st.integers(10, 140), gap=st.integers(1, 60))
def test_no_training_target_overlaps_validation_windows(context, horizon, extra, cut1, gap):
    ds = SlidingWindowDataset.from_frame(_FRAME, FEATURES, context_length=context, horizon=horizon)
    train_end = _DAYS[min(cut1, len(_DAYS) - 2)]
    val_end = _DAYS[min(cut1 + gap, len(_DAYS) - 1)]
    if val_end <= train_end:
        return
    purge = horizon + extra
    split = ds.time_split(train_end, val_end, purge=purge)
    ts = ds.timestamps
    tr, va, te = split["train"], split["val"], split["test"]
    assert not set(tr) & set(va) and not set(va) & set(te) and not set(tr) & set(te)
    # Train touches nothing after train_end; validation nothing up to it, nothing after val_end.
    if tr.size:
        assert ts[ds.sample_end[tr] + horizon - 1].max() <= train_end
    if va.size:
        assert ts[_touched(ds, va)].min() > train_end
        assert ts[ds.sample_end[va] + horizon - 1].max() <= val_end
    if te.size:
        assert ts[_touched(ds, te)].min() > val_end
    # In bars, per symbol: at least `purge` untouched rows between the last train target row and
    # the first validation input row.
    for g in np.unique(ds.group_position):
        tr_g, va_g = tr[ds.group_position[tr] == g], va[ds.group_position[va] == g]
        if tr_g.size and va_g.size:
            last_train_row = (ds.sample_end[tr_g] + horizon - 1).max()
            first_val_row = (ds.sample_end[va_g] - context).min()
            assert first_val_row - last_train_row - 1 >= purge
    # Maximality: a sample is left out only if its touched bars straddle a cut or sit in a purge gap.
    ds_rows = _touched(ds, np.arange(len(ds)))
    unused = np.setdiff1d(np.arange(len(ds)), np.concatenate([tr, va, te]))
    straddle1 = (ts[ds_rows[unused, 0]] <= train_end) & (ts[ds_rows[unused, -1]] > train_end)
    straddle2 = (ts[ds_rows[unused, 0]] <= val_end) & (ts[ds_rows[unused, -1]] > val_end)
    in_purge = ~straddle1 & ~straddle2
    assert (straddle1 | straddle2 | in_purge).all()
    for i in unused[in_purge]:
        # Such a sample starts fewer than `purge` bars (of its own symbol) after the cut before it.
        g0 = ds.group_starts[ds.group_position[i]]
        first = ds.sample_end[i] - context
        prior = ts[g0:first]
        cut = val_end if ts[first] > val_end else train_end
        assert ts[first] > cut and int((prior > cut).sum()) < purge

def test_split_is_unchanged_by_curriculum_and_default_purge_is_horizon():
    ds = SlidingWindowDataset.from_frame(_FRAME, FEATURES, context_length=12, horizon=4, min_context_length=3)
    cut = _DAYS[70]
    a = ds.time_split(cut)
    ds.set_context_length(3)
    b = ds.time_split(cut)
    assert a.keys() == {"train", "val"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(time_split(ds, cut, purge=4)["val"], a["val"])
    assert len(time_split(ds, cut, purge=9)["val"]) < len(a["val"])


def test_split_accepts_strings_and_rejects_bad_cuts():
    ds = SlidingWindowDataset.from_frame(_FRAME, FEATURES, context_length=5, horizon=3)
    day = pd.Timestamp(_DAYS[60])
    np.testing.assert_array_equal(ds.time_split(day.strftime("%Y-%m-%d"))["train"], ds.time_split(day)["train"])
    with pytest.raises(ValueError, match="purge must be an integer >= horizon"):
        ds.time_split(day, purge=2)
    with pytest.raises(ValueError, match="after train_end"):
        ds.time_split(day, val_end=day - pd.Timedelta(days=1))
    with pytest.raises(ValueError, match="not a timestamp"):
        ds.time_split("not a date")
