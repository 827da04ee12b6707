"""The artifact store's layout: where every asset partition lives, documented once.

```
<store>/validated_bars/shard=<s>/period=<p>/data.parquet (+ _meta.json)   history (ParquetStore)
<store>/feature_panel/shard=<s>/period=<p>/...                            history
<store>/window_tensors/shard=<s>/period=<p>/...                           history
<store>/inference_frames/day=<YYYY-MM-DD>/...                             one trading day
<store>/trade_reconciliation/day=<YYYY-MM-DD>/...                         fills vs that day's decision
<store>/checkpoints/<kind>/cutoff=<YYYY-MM-DD>/seed=<s>/<kind>.pt (+ .pt.json)   kind: pretrained | supervised | rl
<store>/reports/folds/cutoff=<YYYY-MM-DD>/          fold report (.md/.html/.png), data/ (fold files), lineage.json
<store>/reports/leaderboard/                        the chained out-of-sample record and its report
<store>/reports/trials/<trial_id>/cutoff=<date>.parquet   every evaluated configuration's daily returns (DSR trials)
```

`location(root, asset, partition)` maps any (asset, partition key) to its place; the Parquet
assets' directories come from `ParquetStore.partition_dir` (which owns the hive naming and its
validation), the rest from the functions below. `training_set` is a manifest recorded in Dagster
only (no file). Every write goes through `plusultra_core.atomic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

CHECKPOINT_DIR = "checkpoints"
REPORTS_DIR = "reports"
FOLD_DATA = "data"              # positions, returns and metrics of a fold, written beside its report
LINEAGE_FILE = "lineage.json"   # which checkpoints (and which writes of them) a fold report was built from


# Parquet assets: partition key -> the store's partition mapping
PARQUET_KEYS = {"validated_bars": "history", "feature_panel": "history", "window_tensors": "history",
                "inference_frames": "day", "trade_reconciliation": "day"}


def location(store_root, asset: str, partition: str | None) -> Path:
    """The directory of ``asset``'s ``partition`` (a Dagster partition key) in the store."""
    from plusultra_core.data.store import ParquetStore
    from plusultra_core.errors import PartitionKeyError

    kind = PARQUET_KEYS.get(asset)
    if kind == "history":
        period, shard = str(partition).split("|")  # Dagster orders dimensions by name
        return ParquetStore(store_root).partition_dir(asset, {"shard": shard, "period": period})
    if kind == "day":
        return ParquetStore(store_root).partition_dir(asset, {"day": str(partition)})
    if asset in ("pretrained_checkpoint", "supervised_checkpoint", "rl_checkpoint"):
        return cutoff_dir(store_root, asset.split("_")[0], str(partition))
    if asset == "evaluation_report":
        return fold_dir(store_root, str(partition))
    if asset == "leaderboard":
        return leaderboard_dir(store_root)
    raise PartitionKeyError(f"asset {asset!r} has no location in the store")


def checkpoint_path(store_root, kind: str, cutoff: str, seed: int) -> Path:
    """``<store>/checkpoints/<kind>/cutoff=<YYYY-MM-DD>/seed=<s>/<kind>.pt``."""
    return cutoff_dir(store_root, kind, cutoff) / f"seed={int(seed)}" / f"{kind}.pt"


def cutoff_dir(store_root, kind: str, cutoff: str) -> Path:
    return Path(store_root) / CHECKPOINT_DIR / kind / f"cutoff={cutoff}"


def checkpoint_paths(store_root, kind: str, cutoff: str, seeds: Sequence[int]) -> list[Path]:
    """One checkpoint per seed of one cutoff, in seed order."""
    return [checkpoint_path(store_root, kind, cutoff, s) for s in seeds]


def is_complete(path: Path) -> bool:
    """Weights and sidecar both present (the sidecar is written last)."""
    return path.is_file() and path.with_name(path.name + ".json").is_file()


def stored_cutoffs(store_root, kind: str, seeds: Sequence[int]) -> list[pd.Timestamp]:
    """Cutoffs whose ``kind`` checkpoints are complete for every seed."""
    base = Path(store_root) / CHECKPOINT_DIR / kind
    out = []
    for d in sorted(base.glob("cutoff=*")) if base.is_dir() else []:
        cutoff = d.name.split("=", 1)[1]
        if all(is_complete(p) for p in checkpoint_paths(store_root, kind, cutoff, seeds)):
            out.append(pd.Timestamp(cutoff))
    return out


def previous_cutoff(store_root, kind: str, cutoff: str, seeds: Sequence[int]) -> str | None:
    """The newest stored cutoff strictly before ``cutoff`` (complete for every seed), if any."""
    earlier = [c for c in stored_cutoffs(store_root, kind, seeds) if c < pd.Timestamp(cutoff)]
    return str(max(earlier).date()) if earlier else None


def fold_dir(store_root, cutoff: str) -> Path:
    return Path(store_root) / REPORTS_DIR / "folds" / f"cutoff={cutoff}"


def fold_dirs(store_root) -> list[Path]:
    """Every fold directory that holds saved fold data, in cutoff order."""
    base = Path(store_root) / REPORTS_DIR / "folds"
    return sorted(d for d in base.glob("cutoff=*") if (d / FOLD_DATA).is_dir()) if base.is_dir() else []


def leaderboard_dir(store_root) -> Path:
    return Path(store_root) / REPORTS_DIR / "leaderboard"


def trials_dir(store_root) -> Path:
    return Path(store_root) / REPORTS_DIR / "trials"
