"""Fan-in of the window tensors for one training cutoff: one store query, plus its lineage.

A checkpoint at cutoff ``C`` reads every shard × period that starts before ``C`` in ONE DuckDB
query (``timestamp < C``, and ``>= C - rolling_years`` for a rolling window), then drops each
symbol's last ``purge_bars`` rows; `plusultra_core.walkforward.cutoff_split` then says where the
fit ends and the validation slice begins. The data version recorded for lineage hashes the
content versions of exactly the partitions read; it is the cutoff's `training_set` data version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from plusultra_core.data.periods import period_bounds
from plusultra_core.errors import PlusUltraError
from plusultra_core.history import STORE_DIMS
from plusultra_core.walkforward import CutoffSplit, CutoffWindow, cutoff_split, last_train_time, training_frame
from plusultra_pipeline.constants import WINDOW_TENSORS


@dataclass
class TrainingData:
    frame: pd.DataFrame          # window frame rows the cutoff's models may see
    feature_names: list[str]
    data_version: str            # combined content version of the partitions read (= training_set's)
    partitions: int
    train_start: pd.Timestamp | None
    train_end: pd.Timestamp | None   # last bar any model of the cutoff sees (after the purge)
    split: CutoffSplit

    def lineage(self) -> dict:
        from plusultra_core.training.checkpoints import feature_hash  # torch: not at definitions load

        return {"data_version": self.data_version, "feature_names": self.feature_names,
                "feature_hash": feature_hash(self.feature_names), "history_partitions": self.partitions,
                "train_range": [str(self.train_start.date()) if self.train_start is not None else None,
                                str(self.train_end.date()) if self.train_end is not None else None],
                **self.split.lineage()}


def load_training_data(store, cutoff, period: str, window: CutoffWindow) -> TrainingData:
    """Window-tensor rows a cutoff's models may see, as one frame sorted (symbol, timestamp)."""
    cutoff = pd.Timestamp(cutoff)
    parts = partitions_before(store, cutoff, period)
    if not parts:
        raise PlusUltraError(f"no window_tensors partitions before cutoff {cutoff.date()} in {store.root}; "
                             "materialise the history assets first")
    split = cutoff_split(cutoff, window)
    where, params = "timestamp < $cutoff", {"cutoff": cutoff}
    if split.fit_start is not None:
        where, params = where + " AND timestamp >= $start", {**params, "start": split.fit_start}
    frame = store.read(WINDOW_TENSORS, parts, where=where, params=params, order_by=["symbol", "timestamp"])
    frame = frame.drop(columns=[c for c in STORE_DIMS if c in frame.columns])
    frame = training_frame(frame, cutoff, window.purge_bars)
    names = list((store.read_metadata(WINDOW_TENSORS, parts[0]) or {}).get("metadata", {}).get("features", []))
    start = pd.Timestamp(frame["timestamp"].min()) if len(frame) else None
    end = last_train_time(frame)
    return TrainingData(frame, names, history_version(store, parts), len(parts), start, end,
                        replace(split, data_end=end))


def partitions_before(store, cutoff, period: str) -> list[dict]:
    """Stored window-tensor partitions whose period starts before ``cutoff``."""
    cutoff = pd.Timestamp(cutoff)
    return [p for p in store.list_partitions(WINDOW_TENSORS) if period_bounds(p["period"], period)[0] < cutoff]


def history_version(store, parts: list[dict]) -> str:
    """Combined content version of the window-tensor partitions ``parts`` (their data versions,
    recorded in the store's sidecars at write time): the data version of a cutoff's training set,
    cheap to recompute without reading any rows."""
    from plusultra_pipeline.events import combined_version, stored_versions

    return combined_version(stored_versions(store, WINDOW_TENSORS, parts))


def load_frame_until(store, end_exclusive, period: str) -> tuple[pd.DataFrame, list[str]]:
    """Every window-tensor row before ``end_exclusive`` (one query), for evaluation folds: the
    model's context before the fold and the linear baseline's training rows both come from it."""
    end = pd.Timestamp(end_exclusive)
    parts = [p for p in store.list_partitions(WINDOW_TENSORS) if period_bounds(p["period"], period)[0] < end]
    if not parts:
        raise PlusUltraError(f"no window_tensors partitions before {end.date()} in {store.root}")
    frame = store.read(WINDOW_TENSORS, parts, where="timestamp < $end", params={"end": end},
                       order_by=["symbol", "timestamp"])
    frame = frame.drop(columns=[c for c in STORE_DIMS if c in frame.columns])
    names = list((store.read_metadata(WINDOW_TENSORS, parts[0]) or {}).get("metadata", {}).get("features", []))
    return frame, names
