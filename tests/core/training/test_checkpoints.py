"""Checkpoint round trip (weights_only), sidecar contents and the failure modes named by path."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from plusultra_core.errors import CheckpointError
from plusultra_core.training.checkpoints import (feature_hash, load_checkpoint, save_checkpoint,
                                                 sidecar_path)


def _state():
    torch.manual_seed(0)
    return {"backbone.w": torch.randn(3, 4), "head.b": torch.randn(4)}


def test_round_trip_preserves_tensors_and_sidecar(tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    info = save_checkpoint(path, _state(), {"architecture": "temporal_hybrid", "metrics": {"val/loss": 0.5},
                                            "feature_names": ["a", "b"], "feature_hash": feature_hash(["a", "b"])})
    assert info.path == path and info.sidecar_path == sidecar_path(path) and info.metrics == {"val/loss": 0.5}
    state, meta = load_checkpoint(path)
    for key, value in _state().items():
        assert torch.equal(state[key], value)
    assert meta["architecture"] == "temporal_hybrid"
    assert meta["created_at"] and meta["code_version"]
    # only the two files, no temporaries left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt", "model.pt.json"]
    assert feature_hash(["a", "b"]) != feature_hash(["b", "a"])  # order is the tensor layout


def test_missing_file_and_sidecar_errors_name_the_path(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(CheckpointError, match="not found.*model.pt"):
        load_checkpoint(path)
    save_checkpoint(path, _state(), {})
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="sidecar missing.*model.pt.json"):
        load_checkpoint(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="sidecar is corrupt.*model.pt.json"):
        load_checkpoint(path)


class _Evil:  # a pickled class is exactly what weights_only=True refuses to load
    pass


def test_non_tensor_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, path)
    sidecar_path(path).write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match="weights_only=True.*evil.pt"):
        load_checkpoint(path)
    path.write_bytes(b"garbage, not a torch file")
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _state(), {"run": 1})
    before = path.read_bytes(), sidecar_path(path).read_text()
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save_checkpoint(path, {"w": torch.zeros(2)}, {"bad": object()})
    with pytest.raises(CheckpointError, match="non-tensor keys.*'step'"):
        save_checkpoint(path, {"w": torch.zeros(2), "step": 3}, {"run": 2})
    assert (path.read_bytes(), sidecar_path(path).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.pt.json"]
