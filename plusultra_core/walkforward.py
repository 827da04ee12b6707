"""Walk-forward folds: what a model trained at a cutoff may see, and what it is judged on.

Fold k has cutoff ``C_k``: its models train on bars strictly before ``C_k`` with the last
``purge_bars`` bars of every symbol removed (so no training target, which looks ``horizon`` bars
ahead, can reach into the evaluation period), and are evaluated on ``[C_k, C_{k+1})``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def training_frame(frame: pd.DataFrame, cutoff, purge_bars: int) -> pd.DataFrame:
    """Rows of a window frame (sorted by symbol, timestamp) usable for training at ``cutoff``.

    Keeps ``timestamp < cutoff`` and then drops each symbol's last ``purge_bars`` rows.
    Vectorised: one reverse cumulative count per symbol via ``groupby().cumcount``.
    """
    cutoff = pd.Timestamp(cutoff)
    before = frame[pd.to_datetime(frame["timestamp"]) < cutoff]
    if purge_bars <= 0 or before.empty:
        return before.reset_index(drop=True)
    from_end = before.groupby("symbol", sort=False).cumcount(ascending=False).to_numpy()
    return before[from_end >= purge_bars].reset_index(drop=True)


def fold_period(cutoff, next_cutoff) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Inclusive ``(first day, last day)`` of the evaluation period ``[cutoff, next_cutoff)``."""
    start = pd.Timestamp(cutoff)
    end = pd.Timestamp(next_cutoff) - pd.Timedelta(days=1)
    if end < start:
        raise ValueError(f"next cutoff {next_cutoff} is not after cutoff {cutoff}")
    return start, end


def last_train_time(frame: pd.DataFrame) -> pd.Timestamp | None:
    """Latest timestamp in a training frame (for lineage and the no-overlap assertion)."""
    if frame.empty:
        return None
    return pd.Timestamp(np.max(pd.to_datetime(frame["timestamp"]).to_numpy()))


def annotate_sidecar(checkpoint_path, fields: dict) -> dict:
    """Merge lineage ``fields`` into a checkpoint's JSON sidecar (atomic replace); return it."""
    import json
    import os
    import tempfile
    from pathlib import Path

    from plusultra_core.training.checkpoints import read_sidecar, sidecar_path

    side = read_sidecar(checkpoint_path)
    side.update(fields)
    target = sidecar_path(checkpoint_path)
    fd, tmp = tempfile.mkstemp(dir=Path(target).parent, prefix=".sidecar-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(side, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return side
