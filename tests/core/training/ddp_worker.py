"""One process of the DDP training test: ``python ddp_worker.py OUT_DIR DEVICES`` (under torchrun
when DEVICES > 1; torchrun sets RANK/WORLD_SIZE and Lightning's DDP joins that process group).

Trains `DDP_TRAINER` on the AR(1) frame with `run_training` and leaves, per rank, in OUT_DIR:
``batches-rank<R>.json`` the (symbol id, first target time) of every training sample this rank
saw, batch by batch, and ``writes-rank<R>.json`` every file the process opened for writing, renamed
or removed under OUT_DIR/model (a Python audit hook: real file-system calls, recorded as they
happen). Rank 0 also writes ``result.json`` (the returned checkpoint description).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

# a few steps of the tiny model, dropout 0 (a dropout mask would differ between 1 and 2 processes);
# blocks_per_batch is the GLOBAL batch: 4 blocks, 2 per rank under 2 processes
DDP_DATA = {"blocks_per_batch": 4, "block_length": 16}
DDP_TRAINER = {"max_epochs": 1, "limit_train_batches": 8, "limit_val_batches": 4, "num_threads": 1,
               "early_stopping_patience": None}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class BatchRecorder(pl.Callback):
    """The identity of every training sample, batch by batch, as this rank received it."""

    def __init__(self):
        self.batches: list[list[list[int]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([[int(g), int(t)] for g, t in zip(batch[2].tolist(), batch[3].tolist())])


def write_auditor(root: Path, log: list):
    """An audit hook appending ``[event, path]`` for writes, renames and removals under ``root``."""
    root = str(root.resolve())

    def under(path) -> str | None:
        if isinstance(path, (str, os.PathLike)):
            full = os.path.abspath(os.fspath(path))
            return full if full.startswith(root) else None
        return None

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and under(path):
                log.append(["open", under(path)])
        elif event == "os.rename" and under(args[1]):
            log.append(["rename", under(args[1])])
        elif event == "os.remove" and under(args[0]):
            log.append(["remove", under(args[0])])

    return hook


def main(out_dir: str, devices: int) -> None:
    from plusultra_core.training.runner import run_training
    from tests.core.training.helpers import train_config
    from tests.core.training.synthetic import FEATURES, ar1_frame

    out = Path(out_dir)
    rank = int(os.environ.get("RANK", "0"))
    trainer = {**DDP_TRAINER, **({"devices": devices, "strategy": "ddp"} if devices > 1 else {})}
    cfg = train_config(out / "model", trainer=trainer, **DDP_DATA)
    frame = ar1_frame(n_symbols=4, n_days=600, phi=0.4, seed=0)
    writes: list = []
    sys.addaudithook(write_auditor(out / "model", writes))
    recorder = BatchRecorder()
    info = run_training(cfg, frame, feature_names=FEATURES, callbacks=[recorder])
    (out / f"batches-rank{rank}.json").write_text(json.dumps(recorder.batches))
    (out / f"writes-rank{rank}.json").write_text(json.dumps(writes))
    if rank == 0:
        (out / "result.json").write_text(json.dumps({"path": str(info.path), "metrics": info.metrics}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
