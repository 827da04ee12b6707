"""Checkpoint round trip (weights_only), sidecar contents and the failure modes named by path."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re

import pytest
import torch

from plusultra_core.errors import CheckpointError
from plusultra_core.training.checkpoints import (WEIGHTS_HASH_KEY, feature_hash, load_checkpoint,
                                                 read_sidecar, save_checkpoint, sidecar_path)
from plusultra_core.walkforward import annotate_sidecar


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


def _other_state():
    return {"backbone.w": torch.zeros(3, 4), "head.b": torch.ones(4)}


def _crash_on_replace(monkeypatch, call: int) -> None:
    """Make the ``call``-th ``os.replace`` raise, as a kill at that moment would stop the write."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == call:
            raise OSError("simulated crash")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _mismatch(path):
    return (rf"^weights {re.escape(str(path))} do not match sidecar {re.escape(str(sidecar_path(path)))}: "
            r"the write was interrupted; retrain$")


def test_sidecar_records_the_hash_of_its_weights(tmp_path):
    path = tmp_path / "model.pt"
    info = save_checkpoint(path, _state(), {WEIGHTS_HASH_KEY: "stale hash from a copied sidecar"})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.sidecar[WEIGHTS_HASH_KEY] == digest == read_sidecar(path)[WEIGHTS_HASH_KEY]
    # annotating the sidecar (walk-forward lineage) keeps the hash, so the pair still loads
    annotate_sidecar(path, {"cutoff": "2020-01-01"})
    assert load_checkpoint(path)[1]["cutoff"] == "2020-01-01"


def test_crash_between_the_two_renames_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _state(), {"run": 1})
    _crash_on_replace(monkeypatch, 2)  # the new weights move into place, the new sidecar does not
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, _other_state(), {"run": 2})
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["head.b"], torch.ones(4))  # new weights ...
    assert json.loads(sidecar_path(path).read_text())["run"] == 1  # ... beside the old sidecar
    for reader in (load_checkpoint, read_sidecar, lambda p: annotate_sidecar(p, {"cutoff": "x"})):
        with pytest.raises(CheckpointError, match=_mismatch(path)):
            reader(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.pt.json"]


def test_crash_before_any_rename_keeps_the_old_pair_loadable(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _state(), {"run": 1})
    _crash_on_replace(monkeypatch, 1)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, _other_state(), {"run": 2})
    monkeypatch.undo()
    state, meta = load_checkpoint(path)
    assert meta["run"] == 1 and torch.equal(state["head.b"], _state()["head.b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.pt.json"]


def test_weights_replaced_by_hand_are_refused_and_old_sidecars_still_load(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _state(), {"run": 1})
    torch.save(_other_state(), path)
    with pytest.raises(CheckpointError, match=_mismatch(path)):
        load_checkpoint(path)
    # a sidecar from before the hash existed describes whatever weights are there
    legacy = {k: v for k, v in json.loads(sidecar_path(path).read_text()).items() if k != WEIGHTS_HASH_KEY}
    sidecar_path(path).write_text(json.dumps(legacy))
    state, meta = load_checkpoint(path)
    assert torch.equal(state["head.b"], torch.ones(4)) and meta["run"] == 1 and read_sidecar(path) == legacy
