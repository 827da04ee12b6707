"""Checkpoints as a plain tensor state dict (``torch.save``) plus a JSON sidecar.

The ``.pt`` file holds only tensors, so it loads with ``torch.load(..., weights_only=True)`` —
no pickled classes, no code execution from a file someone handed you. Everything else a reader
needs (architecture + config, feature list + hash, data and train ranges, metrics, parent
checkpoint, creation time, code version) is in ``<path>.json`` next to it.

Both files are written to temporary names in the target directory and moved into place with
``os.replace``; on any failure the temporaries are removed and an existing checkpoint at ``path``
is left as it was. The sidecar is moved last, so a present sidecar means a complete pair.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from plusultra_core.errors import CheckpointError

SIDECAR_SUFFIX = ".json"


@dataclass
class CheckpointInfo:
    """Where a run's checkpoint went and what it scored."""

    path: Path
    sidecar_path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    sidecar: dict[str, Any] = field(default_factory=dict)


def sidecar_path(path: str | Path) -> Path:
    """``model.pt`` -> ``model.pt.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def feature_hash(feature_names) -> str:
    """Short stable hash of an ordered feature list (order matters: it is the tensor layout)."""
    return hashlib.sha256("\n".join(map(str, feature_names)).encode()).hexdigest()[:16]


def code_version() -> str:
    """Package version plus the git commit of the source tree when it is a checkout."""
    try:
        from importlib.metadata import version
        pkg = version("plusultra")
    except Exception:
        pkg = "unknown"
    head = Path(__file__).resolve().parents[2] / ".git" / "HEAD"
    commit = ""
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref:"):
            ref_file = head.parent / ref.split(" ", 1)[1]
            commit = ref_file.read_text().strip() if ref_file.is_file() else ""
        else:
            commit = ref
    except OSError:
        pass
    return f"{pkg}+{commit[:12]}" if commit else pkg


def _plain_state(state: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the tensors; anything else is a programming error, named here."""
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict must hold only tensors; non-tensor keys: {bad[:10]}")
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(path: str | Path, module_state: Mapping[str, Any], sidecar: Mapping[str, Any]) -> CheckpointInfo:
    """Write ``module_state`` (tensors only) to ``path`` and ``sidecar`` to ``<path>.json``, atomically.

    ``created_at`` and ``code_version`` are filled in when the sidecar lacks them. The sidecar
    must be JSON-serialisable (checked before anything is written).
    """
    path = Path(path)
    meta = dict(sidecar)
    meta.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("code_version", code_version())
    meta.setdefault("n_tensors", len(module_state))
    try:
        meta_blob = json.dumps(meta, indent=2, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: sidecar is not JSON-serialisable: {exc}") from exc
    state = _plain_state(module_state, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = sidecar_path(path)
    tmp_pt = tmp_json = None
    try:
        fd, tmp_pt = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fd, tmp_json = tempfile.mkstemp(prefix=f".{side.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(meta_blob)
            fh.flush()
            os.fsync(fh.fileno())
        # weights first, sidecar last: a sidecar present means the pair is complete
        os.replace(tmp_pt, path)
        tmp_pt = None
        os.replace(tmp_json, side)
        tmp_json = None
    finally:
        for leftover in (tmp_pt, tmp_json):
            if leftover is not None and os.path.exists(leftover):
                os.unlink(leftover)
    return CheckpointInfo(path=path, sidecar_path=side, metrics=dict(meta.get("metrics") or {}), sidecar=meta)


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of checkpoint ``path``; `CheckpointError` naming the file if missing/corrupt."""
    side = sidecar_path(path)
    if not side.is_file():
        raise CheckpointError(f"checkpoint sidecar missing: {side} (written next to {Path(path).name})")
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint sidecar is corrupt: {side}: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint sidecar is corrupt: {side}: expected a JSON object")
    return meta


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, sidecar)`` of a checkpoint written by `save_checkpoint`.

    Always ``weights_only=True`` and ``map_location="cpu"``. Raises `CheckpointError` naming the
    path when the file is missing, is not a loadable tensor dict, or its sidecar is missing or
    corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    meta = read_sidecar(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean "not loadable"
        raise CheckpointError(f"checkpoint is not loadable with weights_only=True: {path}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint is not a tensor state dict: {path}")
    return state, meta
