"""Purged walk-forward split of window samples by time.

Let ``k(C)`` be, for each group (symbol), the first row whose timestamp is after the cut ``C``.
A sample with first target row ``e`` touches rows ``[e - T, e + H)`` (``T`` the dataset's full
context length, even under a shorter curriculum length, so the split never changes with it).

- train:      ``e + H <= k(train_end)``        every bar it touches, targets included, is <= train_end
- validation: ``e - T >= k(train_end) + purge`` its first input bar comes after ``purge`` untouched
              bars following train_end, and (with ``val_end``) ``e + H <= k(val_end)``
- test:       ``e - T >= k(val_end) + purge``  (only with ``val_end``)

Hence every training bar, in particular every training target, has time <= train_end, while
every validation bar (input or target) has time > train_end and sits at least ``purge`` bars later
in its own symbol: no training target overlaps any validation input or target, in any symbol.
The ``purge`` bars (>= H) between them form an embargo: the last training labels and the first
validation labels are never within one horizon of each other, so overlapping-label correlation
cannot leak across the cut.
"""

from __future__ import annotations

import numpy as np

from plusultra_core.timestamps import naive_utc


def _to_ns(value, name: str) -> np.datetime64:
    return naive_utc(value, name, expected="a timestamp").as_unit("ns").to_datetime64()


def _first_after(dataset, cut: np.datetime64) -> np.ndarray:
    """[G] first row index of each group with timestamp > cut (group end if none)."""
    starts = dataset.group_starts
    if starts.shape[0] == 0:
        return starts
    # Rows are time-sorted inside a group, so "rows <= cut" is a prefix whose length we count.
    counts = np.add.reduceat((dataset.timestamps <= cut).astype(np.int64), starts)
    return starts + counts


def time_split(dataset, train_end, val_end=None, purge: int | None = None) -> dict[str, np.ndarray]:
    """Split ``dataset``'s sample indices by time with a purge gap (see the module docstring).

    Args:
        dataset: a ``SlidingWindowDataset``.
        train_end: last timestamp a training sample may touch (inclusive).
        val_end: last timestamp a validation sample may touch; samples after it (plus purge) are "test".
        purge: bars skipped after each cut before the next split's first input bar; default and
            minimum the horizon.

    Returns:
        ``{"train": idx, "val": idx}`` plus ``"test"`` when ``val_end`` is given; sorted int64 arrays.

    Raises:
        ValueError: ``purge < horizon``, unparsable or out-of-order cut points.
    """
    horizon = dataset.horizon
    purge = horizon if purge is None else purge
    if not isinstance(purge, (int, np.integer)) or purge < horizon:
        raise ValueError(f"purge must be an integer >= horizon ({horizon}) bars, got {purge!r}")
    t1 = _to_ns(train_end, "train_end")
    cuts = [t1]
    if val_end is not None:
        t2 = _to_ns(val_end, "val_end")
        if t2 <= t1:
            raise ValueError(f"val_end {val_end} must be after train_end {train_end}")
        cuts.append(t2)

    end, run = dataset.sample_end, dataset.group_position   # [S], [S]
    first_row = end - dataset.context_length                 # [S] first input bar at full length
    after_last = end + horizon                               # [S] one past the last target bar
    k1 = _first_after(dataset, t1)[run]                      # [S]
    out = {"train": np.flatnonzero(after_last <= k1)}
    val = first_row >= k1 + purge
    if val_end is not None:
        k2 = _first_after(dataset, cuts[1])[run]
        out["val"] = np.flatnonzero(val & (after_last <= k2))
        out["test"] = np.flatnonzero(first_row >= k2 + purge)
    else:
        out["val"] = np.flatnonzero(val)
    return {k: v.astype(np.int64, copy=False) for k, v in out.items()}
