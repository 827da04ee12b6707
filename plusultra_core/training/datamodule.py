"""`WindowDataModule`: time-ordered train/val/test loaders over one `SlidingWindowDataset`.

Splits come from `plusultra_core.windows.time_split` (by time, with a purge gap of at least the
horizon, so no training target overlaps a validation window). The train loader draws batches
from `TimeContiguousBatchSampler`: ``blocks_per_batch`` blocks of ``block_length`` consecutive
windows of one symbol, which is what the loss needs to compute Sharpe and drawdown along time.
Validation/test loaders walk each symbol in time order, one contiguous block per batch, so the
loss is defined there too and the concatenated predictions form each symbol's PnL stream.

Batches are assembled by ``dataset.get_batch(indices)`` (one gather per batch, no per-sample
collate) and returned as ``(x [B, T, F], y [B, H], group [B] int64, first_target_time [B] int64 ns)``.

Under DDP (``world`` processes), ``data.blocks_per_batch`` is the global batch: every rank draws
the same seeded sequence of global batches and keeps its own ``blocks_per_batch / world`` whole
blocks of each (`RankShard`), so the all-reduced gradient is the gradient of the single-process
batch and a config trains the same model on one process or many. Validation and test are not
sharded: every rank scores the whole split (small next to training), so the metrics that pick the
best checkpoint and stop early are the same numbers on every rank without a gather.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from plusultra_core.errors import ConfigError
from plusultra_core.training.config import DataConfig
from plusultra_core.windows import SlidingWindowDataset, TimeContiguousBatchSampler, time_split


def resolve_split_point(value: Any, timestamps: np.ndarray) -> pd.Timestamp | None:
    """A split date from a date string/timestamp, or from a fraction of the distinct timestamps."""
    if value is None:
        return None
    if isinstance(value, float):
        distinct = np.unique(np.asarray(timestamps, dtype="datetime64[ns]"))
        if distinct.size == 0:
            raise ConfigError("cannot place a fractional split on an empty dataset")
        return pd.Timestamp(distinct[min(int(value * distinct.size), distinct.size - 1)])
    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data split point {value!r} is neither a date nor a fraction") from exc


def ordered_blocks(indices: np.ndarray, group: np.ndarray, start: np.ndarray, stride: int,
                   block_length: int) -> list[np.ndarray]:
    """Split sample ``indices`` into time-ordered blocks of one symbol and no gaps.

    Blocks hold ``block_length`` to ``2 * block_length - 1`` consecutive windows (a short tail is
    merged into the block before it, so no block degenerates to one sample when avoidable).
    """
    indices = np.asarray(indices)
    if indices.size == 0:
        return []
    g, s = group[indices], start[indices]
    order = np.lexsort((s, g))
    idx, g, s = indices[order], g[order], s[order]
    # a new run starts at a symbol change or a hole in the windows (invalid rows, split edges)
    new_run = np.r_[True, (g[1:] != g[:-1]) | (s[1:] - s[:-1] != stride)]
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.r_[run_start, idx.size])
    pos = np.arange(idx.size) - run_start[run_id]                            # position inside run
    n_full = np.maximum(run_len // block_length, 1)                          # blocks per run
    chunk = np.minimum(pos // block_length, n_full[run_id] - 1)              # tail joins last block
    new_block = np.r_[True, (run_id[1:] != run_id[:-1]) | (chunk[1:] != chunk[:-1])]
    return np.split(idx, np.flatnonzero(new_block)[1:])


class _BatchView(Dataset):
    """Map a list of sample indices to one assembled batch (the sampler yields whole batches)."""

    def __init__(self, dataset, group: np.ndarray, time_ns: np.ndarray):
        self.dataset, self.group, self.time_ns = dataset, group, time_ns

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        x, y = self.dataset.get_batch(idx)                                   # [B, T, F], [B, H]
        return x, y, torch.from_numpy(self.group[idx]), torch.from_numpy(self.time_ns[idx])


def blocks_per_rank(cfg: DataConfig, world: int) -> int:
    """Blocks of each rank's share of a global batch of ``cfg.blocks_per_batch`` blocks."""
    if cfg.blocks_per_batch % world:
        raise ConfigError(f"data.blocks_per_batch ({cfg.blocks_per_batch}) is the global batch and must divide "
                          f"evenly over the {world} training processes (trainer.devices x trainer.num_nodes)")
    return cfg.blocks_per_batch // world


class RankShard(Sampler):
    """Rank ``rank``'s slice of every global batch of ``sampler``: ``1/world`` of its blocks.

    The sampler yields each batch as its blocks' indices, block after block, so an equal slice is
    whole blocks (``blocks_per_batch`` divisible by ``world``, see `blocks_per_rank`).
    """

    def __init__(self, sampler: TimeContiguousBatchSampler, rank: int, world: int):
        self.sampler, self.rank, self.world = sampler, rank, world

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        for batch in self.sampler:
            share = len(batch) // self.world
            yield batch[self.rank * share:(self.rank + 1) * share]


class WindowDataModule(pl.LightningDataModule):
    """Train/val/test loaders over a `SlidingWindowDataset` split by time.

    Build with `from_frame` (a frame from `build_window_frame`) or `from_arrays`, or pass a
    ready dataset. ``seed`` seeds the train sampler's block shuffle.
    """

    def __init__(self, dataset: SlidingWindowDataset, cfg: DataConfig, feature_names: Sequence[str], *,
                 seed: int = 0, timestamps: np.ndarray | None = None):
        super().__init__()
        self.dataset = dataset
        self.cfg = cfg
        self.feature_names = list(feature_names)
        self.seed = seed
        all_times = timestamps if timestamps is not None else getattr(dataset, "timestamps")
        self.train_end = resolve_split_point(cfg.train_end, all_times)
        self.val_end = resolve_split_point(cfg.val_end, all_times)
        if self.val_end is not None and self.train_end is not None and self.val_end <= self.train_end:
            raise ConfigError(f"data.val_end ({self.val_end.date()}) must be after data.train_end "
                              f"({self.train_end.date()})")
        self.splits: dict[str, np.ndarray] = time_split(dataset, self.train_end, self.val_end, cfg.purge_bars)
        for name in ("train", "val"):
            if len(self.splits.get(name, ())) == 0:
                raise ConfigError(
                    f"no {name} windows: {len(dataset)} windows in total, train_end={self.train_end}, "
                    f"val_end={self.val_end}, context_length={cfg.context_length}, horizon={cfg.horizon}; "
                    "move the split dates or shorten the windows")
        group = np.asarray(dataset.group, dtype=np.int64)
        time_ns = np.asarray(dataset.first_target_time, dtype="datetime64[ns]").astype(np.int64)
        self._view = _BatchView(dataset, group, time_ns)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(cls, frame: pd.DataFrame, cfg: DataConfig, feature_names: Sequence[str], *,
                   seed: int = 0) -> "WindowDataModule":
        """From a window frame (`build_window_frame` output, sorted by symbol then time)."""
        missing = [c for c in [*feature_names, cfg.return_column] if c not in frame.columns]
        if missing:
            raise ConfigError(f"window frame lacks column(s) {missing}; it has {list(frame.columns)[:20]}")
        dataset = SlidingWindowDataset.from_frame(
            frame, list(feature_names), return_column=cfg.return_column,
            context_length=cfg.context_length, horizon=cfg.horizon, stride=cfg.stride, zscore=cfg.zscore)
        return cls(dataset, cfg, feature_names, seed=seed,
                   timestamps=frame["timestamp"].to_numpy(dtype="datetime64[ns]"))

    @classmethod
    def from_arrays(cls, features: np.ndarray, returns: np.ndarray, timestamps: np.ndarray,
                    group_ids: np.ndarray, cfg: DataConfig, feature_names: Sequence[str], *,
                    valid: np.ndarray | None = None, seed: int = 0) -> "WindowDataModule":
        """From contiguous arrays ``features [N, F]``, ``returns [N]``, ``timestamps [N]``,
        ``group_ids [N]`` (each group's rows contiguous and time-sorted)."""
        dataset = SlidingWindowDataset(
            np.ascontiguousarray(features, dtype=np.float32), np.asarray(returns, dtype=np.float32),
            np.asarray(timestamps, dtype="datetime64[ns]"), np.asarray(group_ids),
            context_length=cfg.context_length, horizon=cfg.horizon, stride=cfg.stride,
            zscore=cfg.zscore, valid=valid)
        return cls(dataset, cfg, feature_names, seed=seed, timestamps=timestamps)

    # ------------------------------------------------------------------ loaders
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _loader(self, batch_sampler) -> DataLoader:
        # batch_size=None: the sampler yields whole index lists and _BatchView assembles them
        return DataLoader(self._view, sampler=batch_sampler, batch_size=None,
                          num_workers=self.cfg.num_workers)

    def eval_blocks(self, split: str) -> list[np.ndarray]:
        """Time-ordered blocks of one split (what the val/test/predict loaders yield)."""
        return ordered_blocks(self.splits.get(split, np.empty(0, np.int64)), self._view.group,
                              np.asarray(self.dataset.window_start), self.cfg.stride,
                              self.cfg.block_length * self.cfg.blocks_per_batch)

    def train_dataloader(self) -> DataLoader:
        sampler = TimeContiguousBatchSampler(
            self.dataset, self.cfg.block_length, self.cfg.blocks_per_batch,
            indices=self.splits["train"], shuffle=True, seed=self.seed, drop_last=True,
            recency_halflife_days=self.cfg.recency_halflife_days)
        if len(sampler) == 0:
            raise ConfigError(
                f"training split has {len(self.splits['train'])} windows but no full batch of "
                f"{self.cfg.blocks_per_batch} blocks x {self.cfg.block_length} consecutive windows; "
                "lower data.block_length / data.blocks_per_batch")
        rank, world = self._rank_and_world()
        if world > 1:
            blocks_per_rank(self.cfg, world)  # a clear error before any batch is cut
            return self._loader(RankShard(sampler, rank, world))
        return self._loader(sampler)

    def _rank_and_world(self) -> tuple[int, int]:
        """``(global rank, world size)`` of the attached Trainer; ``(0, 1)`` without one."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.eval_blocks("val"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.eval_blocks("test"))

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def split_summary(self) -> dict[str, dict[str, Any]]:
        """Per split: windows, first input bar and last target bar (ISO dates), for the sidecar."""
        out = {}
        first_in = np.asarray(self.dataset.first_target_time, dtype="datetime64[ns]")
        last_tg = np.asarray(self.dataset.last_target_time, dtype="datetime64[ns]")
        for name, idx in self.splits.items():
            idx = np.asarray(idx)
            out[name] = {"windows": int(idx.size)}
            if idx.size:
                out[name]["first_target"] = str(pd.Timestamp(first_in[idx].min()).date())
                out[name]["last_target"] = str(pd.Timestamp(last_tg[idx].max()).date())
        out["split_points"] = {"train_end": str(self.train_end), "val_end": str(self.val_end)}
        return out
