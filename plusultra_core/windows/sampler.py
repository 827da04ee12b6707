"""Batches made of time-contiguous blocks, so a loss can measure Sharpe and drawdown over time.

A shuffled batch of windows from random symbols and dates has no time axis: a "Sharpe ratio"
across it is a cross-sectional statistic. ``TimeContiguousBatchSampler`` instead yields batches
of ``blocks_per_batch`` blocks, each block ``block_length`` consecutive samples of ONE symbol
(sample ends exactly ``stride`` bars apart), laid out block after block: a loss reshapes the
batch to ``[blocks, block_length, ...]`` and walks along time inside each block.

Blocks are cut from maximal runs of consecutive allowed samples (a run breaks at a symbol change,
at a gap in the dataset's samples, e.g. invalid rows, or at a gap in ``indices``, e.g. the purge
of a split); the remainder of a run shorter than one block is not used. Block order is shuffled
every epoch with ``seed + epoch``, so runs are reproducible.

Recency weighting (``recency_halflife_days``): instead of a permutation, each epoch draws as many
blocks as there are, with replacement, with probability ``0.5 ** (age / halflife)`` where age is
the calendar distance of the block's first target from the newest block's. Recent regimes then
weigh more in every epoch while old data still contributes (Qlib-style sample reweighting).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class TimeContiguousBatchSampler(Sampler[list[int]]):
    """Yield lists of sample indices: ``blocks_per_batch`` blocks of ``block_length`` consecutive samples.

    Args:
        dataset: a ``SlidingWindowDataset``.
        block_length: samples per block (time steps the loss sees in a row).
        blocks_per_batch: blocks per batch (batch size = blocks_per_batch * block_length).
        indices: allowed sample indices (e.g. ``time_split(...)["train"]``); default all.
        shuffle: shuffle block order each epoch; otherwise blocks come in (symbol, time) order.
        seed: base seed; epoch ``e`` uses ``seed + e`` (``set_epoch`` for distributed runs).
        drop_last: drop a final batch with fewer than ``blocks_per_batch`` blocks.
        recency_halflife_days: weight blocks by recency (module docstring); needs ``shuffle``.
    """

    def __init__(self, dataset, block_length: int, blocks_per_batch: int, indices: Sequence[int] | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = True,
                 recency_halflife_days: float | None = None):
        if block_length < 1 or blocks_per_batch < 1:
            raise ValueError(f"block_length and blocks_per_batch must be >= 1, got {block_length}, {blocks_per_batch}")
        self.block_length = int(block_length)
        self.blocks_per_batch = int(blocks_per_batch)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        allowed = np.arange(n, dtype=np.int64) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        if allowed.size and (allowed[0] < 0 or allowed[-1] >= n):
            raise ValueError(f"indices must be in [0, {n}), got range [{allowed[0]}, {allowed[-1]}]")
        self.block_starts = self._blocks(dataset, allowed)           # [K] first sample index of each block
        self.block_probs = None                                       # [K] draw probabilities, or None
        if recency_halflife_days is not None and self.block_starts.size:
            if not recency_halflife_days > 0 or not shuffle:
                raise ValueError("recency_halflife_days must be > 0 and needs shuffle=True")
            first = np.asarray(dataset.first_target_time, dtype="datetime64[ns]")[self.block_starts]
            age_days = (first.max() - first).astype("timedelta64[s]").astype(np.float64) / 86400.0
            weight = np.exp2(-age_days / float(recency_halflife_days))
            self.block_probs = weight / weight.sum()

    def _blocks(self, dataset, allowed: np.ndarray) -> np.ndarray:
        """Vectorised run detection and cutting: no loop per run or per symbol."""
        if allowed.size == 0:
            return allowed
        end = dataset.sample_end[allowed]                             # [A]
        run = dataset.group_position[allowed]                         # [A]
        # A new run starts where the group changes or the next sample is not exactly one stride later.
        new_run = np.ones(allowed.size, dtype=bool)
        new_run[1:] = (run[1:] != run[:-1]) | (end[1:] - end[:-1] != dataset.stride)
        run_first = np.flatnonzero(new_run)                           # [R] position of each run's first sample
        run_id = np.cumsum(new_run) - 1                               # [A]
        run_len = np.diff(np.append(run_first, allowed.size))         # [R]
        pos = np.arange(allowed.size) - run_first[run_id]             # [A] position inside its run
        L = self.block_length
        starts_here = (pos % L == 0) & (pos + L <= run_len[run_id])   # a full block begins here
        return allowed[np.flatnonzero(starts_here)]

    @property
    def batch_size(self) -> int:
        return self.block_length * self.blocks_per_batch

    @property
    def n_blocks(self) -> int:
        return int(self.block_starts.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle of the next iteration (otherwise it advances by one per iteration)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full, rest = divmod(self.n_blocks, self.blocks_per_batch)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.block_starts
        rng = np.random.default_rng(self.seed + self.epoch)
        if self.block_probs is not None:
            order = order[rng.choice(order.shape[0], size=order.shape[0], replace=True, p=self.block_probs)]
        elif self.shuffle:
            order = order[rng.permutation(order.shape[0])]
        self.epoch += 1
        offsets = np.arange(self.block_length)
        for b in range(len(self)):
            blocks = order[b * self.blocks_per_batch:(b + 1) * self.blocks_per_batch]   # [K_b]
            # Blocks are consecutive sample indices inside one run: start + 0..L-1, block after block.
            yield (blocks[:, None] + offsets[None, :]).ravel().tolist()
