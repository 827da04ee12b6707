"""Lineage: which data, features, config and parents a checkpoint or an inference day came from.

A checkpoint's JSON sidecar records its own facts and a ``parent`` link (supervised -> the
pretrained checkpoint it was warm-started from, or the previous cutoff's supervised checkpoint
with incremental retraining). `lineage_of_checkpoint` follows those links to the root and
returns one dict per checkpoint, then one ``data`` entry for the data the root was trained on.
`lineage_of_day` starts one step earlier, at the inference frame the Dagster asset stored under
``<store_root>/inference_frames/day=<YYYY-MM-DD>/`` (its ``_meta.json`` metadata names the
``checkpoint``, ``cutoff`` and ``data_version``).

Only recorded facts are reported. Checkpoints trained by the pipeline carry ``data_version``,
``config_hash``, ``train_range`` and ``cutoff`` (added by the training assets); a checkpoint
trained from the command line lacks ``data_version`` (reported as None) and its ``config_hash``
is computed from the config stored in the sidecar, and its ``train_range`` is the sidecar's
``data_range`` (the whole frame it was given, validation and test splits included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plusultra_core.errors import CheckpointError, PartitionKeyError

INFERENCE_FRAMES = "inference_frames"
_MAX_DEPTH = 64
_METRIC_KEYS = ("val/loss", "val/sharpe", "test/sharpe", "val/masked_loss", "val/contrastive_loss")


def _resolve_parent(parent: str, child: Path) -> Path:
    """A parent path as recorded; relative ones are tried from the cwd, then from the child's folder."""
    p = Path(parent).expanduser()
    if p.is_absolute() or p.exists():
        return p
    beside = child.parent / p
    return beside if beside.exists() else p


def train_range(side: dict) -> list | None:
    """``[first, last]`` day a checkpoint was trained on: the graph's ``train_range``, else the
    whole frame a command-line run was given (validation and test included)."""
    if side.get("train_range"):
        return list(side["train_range"])
    rng = side.get("data_range") or {}
    return [rng.get("start"), rng.get("end")] if rng else None


def _node(path: Path, side: dict) -> dict[str, Any]:
    from plusultra_core.config import config_hash

    cfg = side.get("config")
    metrics = side.get("metrics") or {}
    return {
        "kind": side.get("kind", "checkpoint"),
        "path": str(path),
        "architecture": side.get("architecture"),
        "cutoff": side.get("cutoff"),
        "created_at": side.get("created_at"),
        "code_version": side.get("code_version"),
        "feature_hash": side.get("feature_hash"),
        "n_features": side.get("n_features", len(side.get("feature_names") or [])),
        "config_hash": side.get("config_hash") or (config_hash(cfg) if isinstance(cfg, dict) else None),
        "train_range": train_range(side),
        "data_version": side.get("data_version"),
        "db_path": ((cfg or {}).get("data") or {}).get("db_path") if isinstance(cfg, dict) else None,
        "metrics": {k: metrics[k] for k in _METRIC_KEYS if isinstance(metrics.get(k), (int, float))},
        "parent": side.get("parent"),
    }


def lineage_of_checkpoint(path: str | Path) -> list[dict]:
    """Chain of dicts from checkpoint ``path`` through its ``parent`` links, then a ``data`` entry.

    Each checkpoint entry: ``kind, path, architecture, cutoff, created_at, code_version,
    feature_hash, n_features, config_hash, train_range, data_version, db_path, metrics, parent``.
    A parent whose files are gone is an entry ``{"kind": "missing", "path": ...}`` ending the chain.
    The last entry is ``{"kind": "data", "data_version", "train_range", "db_path"}`` of the
    deepest checkpoint. Raises `CheckpointError` if ``path`` itself has no readable sidecar or
    the links form a cycle.
    """
    from plusultra_core.training.checkpoints import read_sidecar, sidecar_path

    path = Path(path)
    chain: list[dict] = []
    seen: set[Path] = set()
    current: Path | None = path
    while current is not None:
        key = current.resolve()
        if key in seen:
            raise CheckpointError(f"{path}: lineage has a cycle at {current}")
        if len(chain) >= _MAX_DEPTH:
            raise CheckpointError(f"{path}: lineage deeper than {_MAX_DEPTH} checkpoints")
        seen.add(key)
        if current != path and not sidecar_path(current).is_file():
            chain.append({"kind": "missing", "path": str(current)})
            break
        side = read_sidecar(current)  # CheckpointError naming the file for the start of the chain
        node = _node(current, side)
        chain.append(node)
        current = _resolve_parent(node["parent"], current) if node["parent"] else None
    last = next((n for n in reversed(chain) if n["kind"] != "missing"), chain[0])
    chain.append({"kind": "data", "data_version": last.get("data_version"),
                  "train_range": last.get("train_range"), "db_path": last.get("db_path")})
    return chain


def lineage_of_day(store_root: str | Path, day) -> list[dict]:
    """Lineage of the inference frame of ``day``: its own entry, then its checkpoint's chain.

    The first entry is ``{"kind": "inference_frame", "day", "path", "checkpoint", "cutoff",
    "data_version", "rows"}`` from the frame's ``_meta.json``. Raises `PartitionKeyError` when
    ``day`` is not a date or the store holds no frame for it.
    """
    import pandas as pd

    from plusultra_core.data.store import ParquetStore

    try:
        key = str(pd.Timestamp(day).date())
    except (TypeError, ValueError) as exc:
        raise PartitionKeyError(f"{day!r} is not a date (YYYY-MM-DD); {describe_days(store_root)}") from exc
    store = ParquetStore(store_root)
    meta = store.read_metadata(INFERENCE_FRAMES, {"day": key})
    if meta is None:
        raise PartitionKeyError(f"no inference frame for {key}; {describe_days(store_root)}")
    user = meta.get("metadata") or {}
    checkpoint = user.get("checkpoint")
    members = list(user.get("checkpoints") or ([checkpoint] if checkpoint else []))
    head = {"kind": "inference_frame", "day": key, "path": str(store.path(INFERENCE_FRAMES, {"day": key})),
            "checkpoint": checkpoint, "members": members, "cutoff": user.get("cutoff"),
            "data_version": user.get("data_version"), "rows": meta.get("rows")}
    chain = [head]
    for member in members:  # a seed ensemble serves the mean of its members: follow each
        if not Path(member).is_file() and not (Path(str(member) + ".json")).is_file():
            chain.append({"kind": "missing", "path": str(member)})
        else:
            chain.extend(lineage_of_checkpoint(member))
    return chain


def stored_days(store_root: str | Path) -> list[str]:
    """Days with a stored inference frame, oldest first."""
    from plusultra_core.data.store import ParquetStore

    return sorted(p["day"] for p in ParquetStore(store_root).list_partitions(INFERENCE_FRAMES) if "day" in p)


def describe_days(store_root: str | Path) -> str:
    """The stored inference days in a few words, for an error line."""
    days = stored_days(store_root)
    if not days:
        return f"the store {Path(store_root)} holds no inference frames yet"
    if len(days) <= 5:
        return f"stored days: {', '.join(days)}"
    return f"stored days: {len(days)} from {days[0]} to {days[-1]}"


def format_lineage(chain: list[dict]) -> str:
    """Human-readable chain, one block per entry, deepest last."""
    lines = []
    for depth, node in enumerate(chain):
        pad = "  " * depth + ("└─ " if depth else "")
        kind = node.get("kind")
        if kind == "inference_frame":
            members = len(node.get("members") or [])
            lines.append(f"{pad}inference frame {node['day']}  checkpoint={node.get('checkpoint')} "
                         + (f"(ensemble of {members} seeds) " if members > 1 else "") +
                         f"cutoff={node.get('cutoff')} data_version={node.get('data_version')} rows={node.get('rows')}")
        elif kind == "missing":
            lines.append(f"{pad}MISSING {node['path']} (files gone)")
        elif kind == "data":
            rng = node.get("train_range") or [None, None]
            lines.append(f"{pad}data  version={node.get('data_version') or 'not recorded'} "
                         f"range={rng[0]}..{rng[1]} db={node.get('db_path')}")
        else:
            rng = node.get("train_range") or [None, None]
            metrics = " ".join(f"{k}={v:.4g}" for k, v in (node.get("metrics") or {}).items())
            lines.append(f"{pad}{kind} {node.get('architecture')}  {node['path']}")
            lines.append(f"{'  ' * (depth + 1)}   cutoff={node.get('cutoff')} train={rng[0]}..{rng[1]} "
                         f"features={node.get('n_features')} feature_hash={node.get('feature_hash')} "
                         f"config_hash={node.get('config_hash')} data_version={node.get('data_version')}"
                         + (f"  {metrics}" if metrics else ""))
    return "\n".join(lines)
