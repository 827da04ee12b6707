"""SlidingWindowDataset: zero copy, target alignment, group/validity boundaries, stride, curriculum."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from plusultra_core.windows import SlidingWindowDataset, TimeContiguousBatchSampler, build_window_frame

from .synthetic import FEATURES, make_panel


def _dataset(context=8, horizon=3, **kw):
    panel = make_panel()
    frame = build_window_frame(panel, FEATURES)
    return panel, frame, SlidingWindowDataset.from_frame(frame, FEATURES, context_length=context, horizon=horizon, **kw)


def _arrays(n_groups=4, rows=50, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    n = n_groups * rows
    feats = rng.normal(size=(n, n_features)).astype(np.float32)
    rets = rng.normal(0, 0.01, n).astype(np.float32)
    ts = np.tile(np.arange(rows), n_groups).astype("datetime64[D]")
    groups = np.repeat(np.arange(n_groups), rows)
    return feats, rets, ts, groups


def test_getitem_is_a_view_and_batch_is_one_gather():
    _, _, ds = _dataset()
    x, y = ds[5]
    assert np.shares_memory(x, ds.features) and np.shares_memory(y, ds.returns)
    assert x.shape == (8, 3) and y.shape == (3,)
    xb, yb = ds.get_batch([0, 5, 17, 40])
    assert xb.shape == (4, 8, 3) and yb.shape == (4, 3) and xb.dtype == yb.dtype == torch.float32
    assert xb.is_contiguous()
    # The batch is its own buffer (gathered), equal to the views.
    assert not np.shares_memory(xb.numpy(), ds.features)
    np.testing.assert_array_equal(xb[1].numpy(), x)
    np.testing.assert_array_equal(yb[1].numpy(), y)


def test_targets_are_returns_after_the_last_input_bar_computed_from_close():
    panel, frame, ds = _dataset(context=8, horizon=3)
    close = panel["close"]
    rng = np.random.default_rng(1)
    idx = rng.choice(len(ds), size=60, replace=False)
    ends = ds.sample_end[idx]
    assert (ds.last_input_time < ds.first_target_time).all()
    for i, e in zip(idx, ends):
        sym = frame["symbol"].iloc[e]
        series = close.xs(sym, level="symbol")
        times = series.index
        k_last_in = times.get_loc(ds.last_input_time[i])
        # The first target bar is the very next bar of this symbol after the last input bar.
        assert times[k_last_in + 1] == ds.first_target_time[i]
        c = series.to_numpy()
        by_hand = c[k_last_in + 1:k_last_in + 4] / c[k_last_in:k_last_in + 3] - 1  # r_k = close_k/close_{k-1}-1
        np.testing.assert_allclose(ds[i][1], by_hand, rtol=1e-5)
        # The input's last row is the last input bar's own features (ret_1d of that bar).
        x = ds[i][0]
        assert x[-1, 0] == pytest.approx(c[k_last_in] / c[k_last_in - 1] - 1, rel=1e-5)


def test_no_window_crosses_a_group_or_touches_an_invalid_row():
    _, frame, ds = _dataset(context=8, horizon=3)
    valid = frame["valid"].to_numpy()
    sym = frame["symbol"].to_numpy()
    rets = frame["ret_1d"].to_numpy()
    starts, ends = ds.window_start, ds.sample_end
    rows = starts[:, None] + np.arange(8)                      # [S, T]
    tgt = ends[:, None] + np.arange(3)                          # [S, H]
    assert valid[rows].all()
    assert np.isfinite(rets[tgt]).all()
    assert (sym[rows] == sym[starts][:, None]).all() and (sym[tgt] == sym[starts][:, None]).all()
    # Completeness: every clean in-group window is a sample (checked by brute force).
    n = len(frame)
    expected = [s + 8 for s in range(n - 11 + 1)
                if valid[s:s + 8].all() and np.isfinite(rets[s + 8:s + 11]).all() and len(set(sym[s:s + 11])) == 1]
    np.testing.assert_array_equal(ends, expected)
    # The hole in symbol 0 (3 NaN rows) removes windows in the middle of its history.
    s0 = ends[ds.group == 0]
    assert np.diff(s0).max() > 1


def test_stride_subsamples_on_a_per_group_grid():
    _, _, full = _dataset(context=8, horizon=3)
    _, _, strided = _dataset(context=8, horizon=3, stride=4)
    assert set(strided.sample_end) <= set(full.sample_end)
    offset = strided.window_start - strided.group_starts[strided.group_position]
    assert (offset % 4 == 0).all()
    kept = (full.window_start - full.group_starts[full.group_position]) % 4 == 0
    np.testing.assert_array_equal(strided.sample_end, full.sample_end[kept])


def test_curriculum_keeps_samples_targets_and_last_input_bar():
    _, _, ds = _dataset(context=16, horizon=2, min_context_length=4)
    ends_before, y_before = ds.sample_end.copy(), ds.get_batch(np.arange(len(ds)))[1]
    x16 = ds[7][0]
    ds.set_context_length(4)
    x4, y4 = ds[7]
    assert x4.shape == (4, 3) and np.shares_memory(x4, ds.features)
    np.testing.assert_array_equal(x4, x16[-4:])                 # same last input bar
    np.testing.assert_array_equal(ds.sample_end, ends_before)
    torch.testing.assert_close(ds.get_batch(np.arange(len(ds)))[1], y_before)
    assert ds.get_batch([0, 1])[0].shape == (2, 4, 3)
    for bad in (3, 17):
        with pytest.raises(ValueError, match="context length"):
            ds.set_context_length(bad)


def test_zscore_per_window_and_feature():
    feats, rets, ts, groups = _arrays()
    feats[:, 2] = 5.0  # a constant feature: eps keeps it finite (0)
    ds = SlidingWindowDataset(feats, rets, ts, groups, context_length=10, horizon=2, zscore=True)
    x, _ = ds[3]
    assert not np.shares_memory(x, ds.features)
    np.testing.assert_allclose(x[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, :2].std(axis=0), 1, atol=1e-3)
    assert (x[:, 2] == 0).all()
    xb, _ = ds.get_batch([3, 4])
    np.testing.assert_allclose(xb[0].numpy(), x, atol=1e-6)
    raw = feats[ds.window_start[4]:ds.sample_end[4]]
    np.testing.assert_allclose(xb[1, :, 0].numpy(), (raw[:, 0] - raw[:, 0].mean()) / (raw[:, 0].std() + 1e-5), atol=1e-5)
    # The base array is untouched.
    assert (ds.features[:, 2] == 5.0).all()


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_dataloader_paths_without_per_sample_collate():
    _, _, ds = _dataset(context=8, horizon=3)
    sampler = TimeContiguousBatchSampler(ds, block_length=4, blocks_per_batch=2, seed=3)
    batches = list(ds.loader(sampler))
    assert len(batches) == len(sampler) > 0
    first = next(iter(TimeContiguousBatchSampler(ds, block_length=4, blocks_per_batch=2, seed=3)))
    x, y = batches[0]
    assert x.shape == (8, 8, 3) and y.shape == (8, 3)
    torch.testing.assert_close(x, ds.get_batch(first)[0])
    random_batches = ds.loader(torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(ds), 6, False))
    assert sum(len(xb) for xb, _ in random_batches) == len(ds)
    plain = torch.utils.data.DataLoader(ds, batch_size=5)     # the default per-item path also works
    xb, yb = next(iter(plain))
    assert xb.shape == (5, 8, 3) and yb.shape == (5, 3)


def test_construction_allocates_far_less_than_a_copy_of_the_windows():
    rng = np.random.default_rng(0)
    n, f, context = 200_000, 16, 64
    feats = rng.normal(size=(n, f)).astype(np.float32)
    rets = rng.normal(0, 0.01, n).astype(np.float32)
    ts = np.tile(np.arange(n // 40, dtype=np.int64), 40).astype("datetime64[D]").astype("datetime64[ns]")
    groups = np.repeat(np.arange(40, dtype=np.int32), n // 40)
    valid = rng.random(n) > 0.001
    tracemalloc.start()
    ds = SlidingWindowDataset(feats, rets, ts, groups, context_length=context, horizon=5, valid=valid)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    base = feats.nbytes
    assert len(ds) > 0.8 * n
    assert np.shares_memory(ds.features, feats)
    # A copy of all windows would be ~context x base; we allow 0.25x base (index arrays) + 1 MB.
    assert peak <= 0.25 * base + 2**20, (peak, base)
    assert peak < 1.1 * base


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "timestamps": np.where(np.arange(200) == 7, a["timestamps"][6], a["timestamps"])},
     "group 0 row 7"),
    (lambda a: {**a, "group_ids": np.where(np.arange(200) >= 150, 0, a["group_ids"])}, "contiguous"),
    (lambda a: {**a, "timestamps": a["timestamps"][::-1].copy()}, "strictly increasing"),
    (lambda a: {**a, "returns": a["returns"][:-1]}, "returns must have shape"),
    (lambda a: {**a, "features": a["features"][0]}, r"\[N, F\]"),
    (lambda a: {**a, "timestamps": np.arange(200)}, "datetime64"),
    (lambda a: {**a, "context_length": 0}, "context_length"),
    (lambda a: {**a, "horizon": 0}, "horizon"),
    (lambda a: {**a, "min_context_length": 20}, "min_context_length"),
    (lambda a: {**a, "valid": np.ones(200)}, "valid"),
])
def test_bad_inputs_are_rejected_with_a_reason(change, message):
    feats, rets, ts, groups = _arrays()
    args = dict(features=feats, returns=rets, timestamps=ts, group_ids=groups, context_length=10, horizon=2)
    with pytest.raises(ValueError, match=message):
        SlidingWindowDataset(**change(args))


def test_series_shorter_than_a_window_give_no_samples():
    feats, rets, ts, groups = _arrays(n_groups=2, rows=10)
    ds = SlidingWindowDataset(feats, rets, ts, groups, context_length=9, horizon=2)
    assert len(ds) == 0
    ds = SlidingWindowDataset(feats, rets, ts, groups, context_length=8, horizon=2)
    assert len(ds) == 2 and list(ds.group) == [0, 1]


def test_non_finite_features_in_rows_marked_valid_are_excluded():
    feats, rets, ts, groups = _arrays(n_groups=1, rows=30)
    feats[12, 1] = np.nan
    ds = SlidingWindowDataset(feats, rets, ts, groups, context_length=5, horizon=1)
    rows = ds.window_start[:, None] + np.arange(5)
    assert not (rows == 12).any()
    assert len(ds) == (30 - 6 + 1) - 5  # the 5 windows that contain row 12 are gone
