"""TimeContiguousBatchSampler: blocks are one symbol, consecutive in time, never across gaps."""

from __future__ import annotations

import numpy as np
import pytest

from plusultra_core.windows import SlidingWindowDataset, TimeContiguousBatchSampler, build_window_frame

from .synthetic import FEATURES, make_panel

_FRAME = build_window_frame(make_panel(n_symbols=3, n_days=120), FEATURES)


def _ds(stride=1):
    return SlidingWindowDataset.from_frame(_FRAME, FEATURES, context_length=6, horizon=2, stride=stride)


def _check_blocks(ds, batch, block_length, blocks, allowed=None):
    arr = np.asarray(batch).reshape(blocks, block_length)        # [blocks, block_length]
    end, grp = ds.sample_end[arr], ds.group_position[arr]
    assert (grp == grp[:, :1]).all()                              # one symbol per block
    assert (np.diff(end, axis=1) == ds.stride).all()              # consecutive windows in time
    assert (np.diff(ds.timestamps[end].astype(np.int64), axis=1) > 0).all()
    if allowed is not None:
        assert np.isin(arr, allowed).all()


@pytest.mark.parametrize("stride", [1, 3])
def test_blocks_are_single_symbol_and_time_contiguous(stride):
    ds = _ds(stride)
    sampler = TimeContiguousBatchSampler(ds, block_length=5, blocks_per_batch=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for b in batches:
        assert len(b) == 15
        _check_blocks(ds, b, 5, 3)
    # Blocks do not overlap and no block is used twice in an epoch.
    flat = np.concatenate(batches)
    assert len(np.unique(flat)) == len(flat)


def test_blocks_never_cross_gaps_in_samples_or_allowed_indices():
    ds = _ds()
    # Symbol 0 has a NaN hole: its samples have a gap in sample_end.
    gaps = np.flatnonzero((np.diff(ds.sample_end) != 1) & (np.diff(ds.group_position) == 0))
    assert gaps.size > 0
    allowed = np.setdiff1d(np.arange(len(ds)), np.arange(30, 37))   # a hole in the allowed indices too
    sampler = TimeContiguousBatchSampler(ds, block_length=4, blocks_per_batch=2, indices=allowed, shuffle=False)
    starts = sampler.block_starts
    for b in sampler:
        _check_blocks(ds, b, 4, 2, allowed)
    # Non-shuffled blocks come in (symbol, time) order, and are maximal: every run of length >= 4
    # contributes floor(run / 4) blocks.
    assert (np.diff(starts) >= 4).all()
    ok = np.isin(np.arange(len(ds)), allowed)
    breaks = np.ones(len(ds), dtype=bool)
    breaks[1:] = (np.diff(ds.sample_end) != 1) | (np.diff(ds.group_position) != 0) | ~ok[1:] | ~ok[:-1]
    run_ids = np.cumsum(breaks)
    expected = sum(np.sum(ok[run_ids == r]) // 4 for r in np.unique(run_ids[ok]))
    assert sampler.n_blocks == expected


def test_shuffle_is_seeded_per_epoch_and_len_respects_drop_last():
    ds = _ds()
    a = TimeContiguousBatchSampler(ds, 5, 4, seed=7)
    b = TimeContiguousBatchSampler(ds, 5, 4, seed=7)
    e0a, e0b = list(a), list(b)
    assert e0a == e0b
    e1a = list(a)
    assert e1a != e0a                                             # another order next epoch...
    full = TimeContiguousBatchSampler(ds, 5, 4, seed=7, drop_last=False)
    ep0, ep1 = np.concatenate(list(full)), np.concatenate(list(full))
    assert sorted(ep0) == sorted(ep1) and not np.array_equal(ep0, ep1)  # ...of the same blocks
    a.set_epoch(0)
    assert list(a) == e0a
    keep = TimeContiguousBatchSampler(ds, 5, 4, drop_last=False, shuffle=False)
    drop = TimeContiguousBatchSampler(ds, 5, 4, drop_last=True, shuffle=False)
    assert len(drop) == keep.n_blocks // 4
    assert len(keep) == -(-keep.n_blocks // 4)
    assert len(list(keep)) == len(keep)
    assert sum(len(x) for x in keep) == keep.n_blocks * 5


def test_bad_arguments():
    ds = _ds()
    with pytest.raises(ValueError, match="block_length"):
        TimeContiguousBatchSampler(ds, 0, 2)
    with pytest.raises(ValueError, match="indices must be in"):
        TimeContiguousBatchSampler(ds, 4, 2, indices=[len(ds)])
    empty = TimeContiguousBatchSampler(ds, 4, 2, indices=[])
    assert len(empty) == 0 and list(empty) == []
