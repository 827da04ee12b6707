"""Checkpoints as a plain tensor state dict (``torch.save``) plus a JSON sidecar.

The ``.pt`` file holds only tensors, so it loads with ``torch.load(..., weights_only=True)`` —
no pickled classes, no code execution from a file someone handed you. Everything else a reader
needs (architecture + config, feature list + hash, data and train ranges, metrics, parent
checkpoint, creation time, code version) is in ``<path>.json`` next to it.

The two files are one unit. They are written with `plusultra_core.atomic.write_files` (both
temporaries fsynced before either rename, the sidecar renamed last), and the sidecar records the
SHA-256 of the exact weights bytes (``weights_sha256``). A crash between the two renames leaves new
weights beside the old sidecar; the readers here compare the hash and refuse such a pair instead
of loading weights under someone else's description. Sidecars written before the hash existed
carry none and still load.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from plusultra_core import atomic
from plusultra_core.errors import CheckpointError

SIDECAR_SUFFIX = ".json"
WEIGHTS_HASH_KEY = "weights_sha256"  # sidecar field: hex SHA-256 of the weights file it describes


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


# A sidecar longer than this is not searched for the swapped pair (n^2/2 hashes: ~30 ms here).
_SWAP_SEARCH_MAX = 256


def check_feature_order(names, sidecar: Mapping[str, Any], where) -> None:
    """Refuse to feed a model ``names`` (its inputs, in order) unless they hash to the sidecar's
    ``feature_hash``, recorded when the model was trained: the tensor layout is positional, so two
    swapped names would feed each column to the other's weights without any other error.

    Raises a one-line `CheckpointError` naming the first differing position (index from 0): against
    the sidecar's ``feature_names`` when those still match the hash, else (the sidecar's own list
    was edited) from the one swap of two names that restores the hash, when there is one.
    """
    expected = sidecar.get("feature_hash")
    names = [str(n) for n in names]
    if not expected:
        raise CheckpointError(f"{where}: sidecar has no feature_hash, so the feature order cannot be verified")
    if feature_hash(names) == expected:
        return
    recorded = [str(n) for n in sidecar.get("feature_names") or []]
    if names != recorded and feature_hash(recorded) == expected:
        i = next((k for k, (a, b) in enumerate(zip(names, recorded)) if a != b), min(len(names), len(recorded)))
        fed, trained = (repr(x[i]) if i < len(x) else "nothing" for x in (names, recorded))
        raise CheckpointError(f"{where}: feature order differs from the checkpoint's at index {i}: "
                              f"fed {fed}, trained on {trained}")
    swap = _swap_restoring(names, expected)
    if swap is None:
        raise CheckpointError(f"{where}: the {len(names)} feature names do not hash to the sidecar's feature_hash "
                              f"{expected}: the list was reordered or edited after training")
    i, j = swap
    raise CheckpointError(f"{where}: feature order differs from the checkpoint's feature_hash {expected} "
                          f"first at index {i}: {names[i]!r} there was {names[j]!r} in training "
                          f"(indices {i} and {j} swapped)")


def _swap_restoring(names: list[str], expected: str) -> tuple[int, int] | None:
    """The first pair ``(i, j)`` whose swap makes ``names`` hash to ``expected`` (a hand-edited list
    usually differs by one swap), or None."""
    if len(names) > _SWAP_SEARCH_MAX:
        return None
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            trial = list(names)
            trial[i], trial[j] = trial[j], trial[i]
            if feature_hash(trial) == expected:
                return i, j
    return None


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
    """Write ``module_state`` (tensors only) to ``path`` and ``sidecar`` to ``<path>.json`` as one unit.

    ``created_at`` and ``code_version`` are filled in when the sidecar lacks them;
    ``weights_sha256`` is always set to the hash of the weights written. The sidecar must be
    JSON-serialisable (checked before anything is written).
    """
    path = Path(path)
    meta = dict(sidecar)
    meta.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("code_version", code_version())
    meta.setdefault("n_tensors", len(module_state))
    state = _plain_state(module_state, path)
    buffer = io.BytesIO()  # serialised in memory first: the sidecar carries the hash of exactly these bytes
    torch.save(state, buffer)
    weights = buffer.getvalue()
    meta[WEIGHTS_HASH_KEY] = hashlib.sha256(weights).hexdigest()
    try:
        meta_blob = json.dumps(meta, indent=2, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: sidecar is not JSON-serialisable: {exc}") from exc
    side = sidecar_path(path)
    atomic.write_files({path: weights, side: meta_blob})  # weights renamed first, sidecar last
    return CheckpointInfo(path=path, sidecar_path=side, metrics=dict(meta.get("metrics") or {}), sidecar=meta)


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of checkpoint ``path``, checked against the weights file when it exists.

    Raises `CheckpointError` naming the file if the sidecar is missing or corrupt, or names both
    files when the weights are not the ones the sidecar describes (an interrupted write).
    """
    meta = _sidecar_json(path)
    weights = Path(path)
    if meta.get(WEIGHTS_HASH_KEY) is not None and weights.is_file():
        with open(weights, "rb") as fh:
            _check_pair(weights, meta, hashlib.file_digest(fh, "sha256").hexdigest())
    return meta


def _sidecar_json(path: str | Path) -> dict[str, Any]:
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


def _check_pair(weights: Path, meta: Mapping[str, Any], digest: str) -> None:
    """Refuse weights whose SHA-256 is not the one their sidecar recorded (none recorded: older sidecar)."""
    expected = meta.get(WEIGHTS_HASH_KEY)
    if expected is not None and expected != digest:
        raise CheckpointError(f"weights {weights} do not match sidecar {sidecar_path(weights)}: "
                              "the write was interrupted; retrain")


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, sidecar)`` of a checkpoint written by `save_checkpoint`.

    Always ``weights_only=True`` and ``map_location="cpu"``. Raises `CheckpointError` naming the
    path when the file is missing, is not a loadable tensor dict, its sidecar is missing or
    corrupt, or the sidecar describes other weights (see `read_sidecar`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    meta = _sidecar_json(path)
    blob = path.read_bytes()  # hashed and loaded from one read: the checked bytes are the loaded bytes
    _check_pair(path, meta, hashlib.sha256(blob).hexdigest())
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean "not loadable"
        raise CheckpointError(f"checkpoint is not loadable with weights_only=True: {path}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint is not a tensor state dict: {path}")
    return state, meta
