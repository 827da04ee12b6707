"""Sliding windows over a contiguous float32 array, without ever copying a window.

Legend: ``N`` rows (all symbols stacked, each symbol one contiguous time-sorted block), ``F``
features, ``T`` context length (bars of input), ``H`` horizon (bars of targets), ``S`` samples,
``B`` batch.

A sample is identified by its *end* ``e``: the index of its first target bar. Its input is rows
``[e - T, e)`` and its targets are ``returns[e : e + H]`` (``ret`` at bar k is
``close_k / close_{k-1} - 1``, so the first target is the move from the last input bar's close to
the next one: strictly after everything the input saw). A sample exists when all ``T`` input rows
are valid, all ``H`` target returns are finite, and input and targets lie in one group (symbol).
Curriculum shortens the input to ``[e - L, e)`` for ``L <= T`` while keeping ``e``, so the set of
samples, their targets and any time split are the same at every length.

Inputs are read through ``sliding_window_view`` (a strided view ``[N - T + 1, T, F]`` of the base
array): ``dataset[i]`` returns a view, ``get_batch`` (and ``dataset[list_of_indices]``) does one fancy-index gather into a fresh
``[B, T, F]`` buffer handed to torch without another copy. Sample construction is vectorised with
cumulative sums of the invalid-row masks (a window is clean iff the count does not change across
it), never a Python loop per window or per symbol.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

_CHUNK_ROWS = 1 << 16  # rows per chunk of the finiteness scan: bounds its temporary to ~F * 64 KiB


def _rows_finite(features: np.ndarray) -> np.ndarray:
    """[N, F] -> [N] bool, all features of the row finite; scanned in chunks to keep memory flat."""
    out = np.empty(features.shape[0], dtype=bool)
    for lo in range(0, features.shape[0], _CHUNK_ROWS):
        np.isfinite(features[lo:lo + _CHUNK_ROWS]).all(axis=1, out=out[lo:lo + _CHUNK_ROWS])
    return out


def _count_prefix(bad: np.ndarray) -> np.ndarray:
    """[N] bool -> [N + 1] counts of True before each position (int32 when it fits)."""
    dtype = np.int32 if bad.shape[0] < np.iinfo(np.int32).max else np.int64
    out = np.zeros(bad.shape[0] + 1, dtype=dtype)
    np.cumsum(bad, dtype=dtype, out=out[1:])
    return out


class SlidingWindowDataset(Dataset):
    """Windows of ``context_length`` rows with ``horizon`` future returns as targets.

    Args:
        features: [N, F] float32, C-contiguous (otherwise one converted copy is made up front).
        returns: [N] per-bar returns (the target stream).
        timestamps: [N] datetime64 (converted to ns).
        group_ids: [N] integers; rows of one group (symbol) contiguous and strictly time-sorted.
        context_length: T, input bars per sample (the maximum, if a curriculum is used).
        horizon: H, target bars per sample.
        stride: keep windows whose start is a multiple of ``stride`` bars from the group's first row.
        zscore: normalise each window per feature over time (returns a copy, not a view).
        valid: [N] bool, rows allowed in an input window (default all); rows with any non-finite
            feature are invalid whatever this says.
        min_context_length: the shortest length ``set_context_length`` accepts (default T).
        zscore_eps: added to the per-window standard deviation.
        feature_names, group_names: labels kept for reporting (``from_frame`` fills them).

    Raises:
        ValueError: shapes disagree, lengths out of range, groups not contiguous or time not
            strictly increasing inside a group.
    """

    def __init__(self, features: np.ndarray, returns: np.ndarray, timestamps: np.ndarray,
                 group_ids: np.ndarray, context_length: int, horizon: int, stride: int = 1,
                 zscore: bool = False, valid: np.ndarray | None = None,
                 min_context_length: int | None = None, *, zscore_eps: float = 1e-5,
                 feature_names: Sequence[str] | None = None, group_names: Sequence[str] | None = None):
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"features must be [N, F], got shape {features.shape}")
        n = features.shape[0]
        returns = np.ascontiguousarray(returns, dtype=np.float32)
        timestamps = np.asarray(timestamps)
        group_ids = np.asarray(group_ids)
        for name, arr in (("returns", returns), ("timestamps", timestamps), ("group_ids", group_ids)):
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like features' rows, got {arr.shape}")
        if timestamps.dtype.kind != "M":
            raise ValueError(f"timestamps must be datetime64, got {timestamps.dtype}")
        if group_ids.dtype.kind not in "iu":
            raise ValueError(f"group_ids must be integers, got {group_ids.dtype}")
        for name, value, lo in (("context_length", context_length, 1), ("horizon", horizon, 1), ("stride", stride, 1)):
            if not isinstance(value, (int, np.integer)) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
        min_context_length = context_length if min_context_length is None else min_context_length
        if not 1 <= min_context_length <= context_length:
            raise ValueError(f"min_context_length must be in [1, {context_length}], got {min_context_length}")
        if valid is not None:
            valid = np.asarray(valid)
            if valid.shape != (n,) or valid.dtype != bool:
                raise ValueError(f"valid must be a bool array of shape ({n},), got {valid.dtype} {valid.shape}")
        if feature_names is not None and len(feature_names) != features.shape[1]:
            raise ValueError(f"{len(feature_names)} feature names for {features.shape[1]} feature columns")

        self.features = features                                      # [N, F] the one base array
        self.returns = returns                                        # [N]
        self.timestamps = timestamps.astype("datetime64[ns]", copy=False)
        self.group_ids = group_ids
        self.context_length = int(context_length)
        self.horizon = int(horizon)
        self.stride = int(stride)
        self.zscore = bool(zscore)
        self.zscore_eps = float(zscore_eps)
        self.min_context_length = int(min_context_length)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.group_names = list(group_names) if group_names is not None else None

        self.group_starts = self._check_groups()                      # [G] first row of each group
        self._end, self._run = self._build_samples(valid)             # [S] first target row, [S] group position
        self._targets = np.lib.stride_tricks.sliding_window_view(self.returns, self.horizon)  # [N-H+1, H]
        self.set_context_length(self.context_length)

    # ------------------------------------------------------------------ construction
    def _check_groups(self) -> np.ndarray:
        g, t = self.group_ids, self.timestamps
        n = g.shape[0]
        starts = np.flatnonzero(g[1:] != g[:-1]) + 1
        starts = np.concatenate([[0], starts]) if n else starts
        run_ids = g[starts]
        if np.unique(run_ids).shape[0] != run_ids.shape[0]:
            vals, counts = np.unique(run_ids, return_counts=True)
            raise ValueError(
                f"rows of a group must be contiguous: group id {vals[counts > 1][0]} appears in "
                f"{counts[counts > 1][0]} separate blocks (sort rows by symbol, then time)"
            )
        if n > 1:
            bad = ~(t[1:] > t[:-1])                                   # [N-1] not strictly increasing
            bad[starts[1:] - 1] = False                               # a new group may restart time
            if bad.any():
                k = int(np.flatnonzero(bad)[0]) + 1
                name = self._group_label(g[k])
                raise ValueError(
                    f"timestamps must be strictly increasing inside a group: group {name} row {k} "
                    f"has {t[k]} after {t[k - 1]}"
                )
        if n and np.isnat(t).any():
            raise ValueError(f"timestamps contain NaT at row {int(np.flatnonzero(np.isnat(t))[0])}")
        return starts.astype(np.int64)

    def _group_label(self, gid) -> str:
        if self.group_names is not None and 0 <= int(gid) < len(self.group_names):
            return f"{self.group_names[int(gid)]!r}"
        return str(gid)

    def _build_samples(self, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised sample ends: clean inputs, finite targets, one group, on the stride grid."""
        n, T, H = self.features.shape[0], self.context_length, self.horizon
        m = n - T - H + 1                                             # candidate ends e = T .. n - H
        if m <= 0:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        in_ok = _rows_finite(self.features)
        if valid is not None:
            in_ok &= valid
        np.logical_not(in_ok, out=in_ok)                              # reuse the buffer: now "bad input row"
        bad_in = _count_prefix(in_ok)                                 # [N+1]
        del in_ok
        tgt_bad = ~np.isfinite(self.returns)
        bad_tgt = _count_prefix(tgt_bad)                              # [N+1]
        del tgt_bad
        # Input rows [e-T, e) clean <=> no bad row counted between them; same for targets [e, e+H).
        ok = bad_in[T:T + m] == bad_in[0:m]                          # [M]
        del bad_in
        ok &= bad_tgt[T + H:T + H + m] == bad_tgt[T:T + m]
        del bad_tgt
        # Groups are contiguous, so first input row and last target row in one group <=> same id.
        ok &= self.group_ids[0:m] == self.group_ids[T + H - 1:T + H - 1 + m]
        ends = np.flatnonzero(ok)
        del ok
        ends += T                                                     # [S] first target row
        run = np.searchsorted(self.group_starts, ends, side="right") - 1
        if self.stride > 1:
            keep = (ends - T - self.group_starts[run]) % self.stride == 0
            ends, run = ends[keep], run[keep]
        return ends.astype(np.int64, copy=False), run.astype(np.int32)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, feature_names: Sequence[str], return_column: str = "ret_1d",
                   valid_column: str | None = "valid", *, group_column: str = "symbol",
                   time_column: str = "timestamp", **kw) -> "SlidingWindowDataset":
        """Build from a window frame (``build_window_frame`` output, sorted by symbol then time).

        Copies the feature columns once into a fresh C-contiguous [N, F] float32 array (non-finite
        values -> 0.0 and the row marked invalid). ``kw`` goes to the constructor.
        """
        feature_names = list(feature_names)
        needed = [time_column, group_column, return_column, *feature_names]
        if valid_column is not None:
            needed.append(valid_column)
        missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
        if missing:
            raise ValueError(f"window frame lacks columns {missing}")
        n = len(df)
        features = np.empty((n, len(feature_names)), dtype=np.float32)
        valid = (np.array(df[valid_column].to_numpy(dtype=bool), dtype=bool, copy=True)
                 if valid_column is not None else np.ones(n, dtype=bool))
        for j, name in enumerate(feature_names):
            col = df[name].to_numpy(dtype=np.float32, na_value=np.nan)
            finite = np.isfinite(col)
            valid &= finite
            features[:, j] = np.where(finite, col, np.float32(0.0))
        codes, names = pd.factorize(df[group_column], sort=False)
        ts = pd.DatetimeIndex(df[time_column]).as_unit("ns").to_numpy()
        return cls(features, df[return_column].to_numpy(dtype=np.float32, na_value=np.nan), ts,
                   codes.astype(np.int32 if len(names) < 2**31 else np.int64), valid=valid,
                   feature_names=feature_names, group_names=[str(s) for s in names], **kw)

    # ------------------------------------------------------------------ curriculum
    def set_context_length(self, length: int) -> None:
        """Use the last ``length`` input bars of every sample (same samples, same targets)."""
        if not self.min_context_length <= length <= self.context_length:
            raise ValueError(f"context length must be in [{self.min_context_length}, {self.context_length}], got {length}")
        self.current_context_length = int(length)
        if self.features.shape[0] >= length:
            # [N - L + 1, F, L] -> [N - L + 1, L, F]: still a view of the base array.
            self._windows = np.lib.stride_tricks.sliding_window_view(self.features, length, axis=0).transpose(0, 2, 1)
        else:
            self._windows = np.empty((0, length, self.features.shape[1]), np.float32)

    # ------------------------------------------------------------------ sample facts
    def __len__(self) -> int:
        return int(self._end.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def sample_end(self) -> np.ndarray:
        """[S] row index of each sample's first target bar (fixed under curriculum)."""
        return self._end

    @property
    def window_start(self) -> np.ndarray:
        """[S] row index of each sample's first input bar at the current context length."""
        return self._end - self.current_context_length

    @property
    def group(self) -> np.ndarray:
        """[S] group id (``group_ids`` value) of each sample."""
        return self.group_ids[self.group_starts[self._run]]

    @property
    def group_position(self) -> np.ndarray:
        """[S] position of each sample's group in ``group_starts`` (0..G-1)."""
        return self._run

    @property
    def first_input_time(self) -> np.ndarray:
        return self.timestamps[self.window_start]

    @property
    def last_input_time(self) -> np.ndarray:
        return self.timestamps[self._end - 1]

    @property
    def first_target_time(self) -> np.ndarray:
        return self.timestamps[self._end]

    @property
    def last_target_time(self) -> np.ndarray:
        return self.timestamps[self._end + self.horizon - 1]

    # ------------------------------------------------------------------ access
    def _normalise(self, x: np.ndarray) -> np.ndarray:
        """Per-window, per-feature z-score over time, in place on ``x`` [..., L, F]."""
        t = torch.from_numpy(x)
        std, mean = torch.std_mean(t, dim=-2, keepdim=True, correction=0)  # [..., 1, F]
        t.sub_(mean).div_(std.add_(self.zscore_eps))
        return x

    def __getitem__(self, i):
        """Sample ``i`` as (x [L, F], y [H]) numpy views of the base arrays (x is a copy if zscore).

        Given a list/array of indices instead, returns ``get_batch(i)``: that is the path of
        :meth:`loader`, where the sampler yields whole batches of indices.
        """
        if not isinstance(i, (int, np.integer)):
            return self.get_batch(i)
        e = int(self._end[i])
        x = self._windows[e - self.current_context_length]          # [L, F] view
        y = self._targets[e]                                          # [H] view
        if self.zscore:
            x = self._normalise(np.array(x, dtype=np.float32))
        return x, y

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` as (x [B, L, F], y [B, H]) float tensors: one gather for x, one for y."""
        ends = self._end[np.asarray(indices, dtype=np.intp)]         # [B]
        x = self._windows[ends - self.current_context_length]        # [B, L, F] the one copy
        y = self._targets[ends]                                       # [B, H]
        if self.zscore:
            self._normalise(x)
        return torch.from_numpy(x), torch.from_numpy(y)

    def loader(self, batch_sampler, num_workers: int = 0, **kw) -> DataLoader:
        """A DataLoader yielding (x [B, L, F], y [B, H]) via ``get_batch``, no per-sample collate.

        ``batch_sampler`` yields lists of sample indices (``TimeContiguousBatchSampler`` or
        ``torch.utils.data.BatchSampler``); automatic batching is off (``batch_size=None``), so
        each list goes to ``__getitem__`` whole and the tensors pass through unchanged.
        """
        return DataLoader(self, sampler=batch_sampler, batch_size=None, num_workers=num_workers, **kw)

    def time_split(self, train_end, val_end=None, purge: int | None = None) -> dict[str, np.ndarray]:
        """Purged time split of the sample indices; see :func:`plusultra_core.windows.split.time_split`."""
        from plusultra_core.windows.split import time_split

        return time_split(self, train_end, val_end, purge)
