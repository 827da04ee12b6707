"""Lineage: checkpoint parent chains down to the data version, inference days, formatting."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from plusultra_core.data.store import ParquetStore
from plusultra_core.errors import CheckpointError, PartitionKeyError
from plusultra_core.lineage import INFERENCE_FRAMES, format_lineage, lineage_of_checkpoint, lineage_of_day
from plusultra_core.training.checkpoints import read_sidecar, save_checkpoint, sidecar_path


def _ckpt(path, kind, parent=None, **extra):
    side = {"kind": kind, "architecture": "temporal_hybrid", "feature_names": ["a", "b"],
            "feature_hash": f"fh-{kind}", "config": {"data": {"db_path": "market.sqlite"}},
            "parent": str(parent) if parent else None, **extra}
    return save_checkpoint(path, {"w": torch.zeros(2)}, side).path


@pytest.fixture
def chain(tmp_path):
    pre = _ckpt(tmp_path / "c1" / "pretrained.pt", "pretrained", data_version="dv-2019",
                train_range=["2010-01-04", "2019-12-20"], cutoff="2020-01-01", config_hash="cfg-pre")
    sup1 = _ckpt(tmp_path / "c1" / "supervised.pt", "supervised", pre, data_version="dv-2019",
                 cutoff="2020-01-01", metrics={"val/sharpe": 1.25, "epochs": 3})
    sup2 = _ckpt(tmp_path / "c2" / "supervised.pt", "supervised", sup1, data_version="dv-2020",
                 cutoff="2020-02-01")
    return pre, sup1, sup2


def test_chain_follows_parents_to_the_data_version(chain):
    pre, sup1, sup2 = chain
    lineage = lineage_of_checkpoint(sup2)
    assert [n["kind"] for n in lineage] == ["supervised", "supervised", "pretrained", "data"]
    assert [n.get("path") for n in lineage[:3]] == [str(sup2), str(sup1), str(pre)]
    assert [n["cutoff"] for n in lineage[:3]] == ["2020-02-01", "2020-01-01", "2020-01-01"]
    assert lineage[-1] == {"kind": "data", "data_version": "dv-2019", "train_range": ["2010-01-04", "2019-12-20"],
                           "db_path": "market.sqlite"}
    assert lineage[2]["config_hash"] == "cfg-pre" and lineage[0]["config_hash"]  # computed when not recorded
    assert lineage[1]["metrics"] == {"val/sharpe": 1.25}
    text = format_lineage(lineage)
    assert "dv-2019" in text and "dv-2020" in text and str(pre) in text and "val/sharpe=1.25" in text


def test_missing_parent_and_cycles(chain, tmp_path):
    pre, sup1, sup2 = chain
    pre.unlink()
    sidecar_path(pre).unlink()
    lineage = lineage_of_checkpoint(sup2)
    assert lineage[2] == {"kind": "missing", "path": str(pre)}
    assert lineage[-1]["data_version"] == "dv-2019"                 # from the deepest existing checkpoint
    assert "MISSING" in format_lineage(lineage)
    side = read_sidecar(sup1)
    sidecar_path(sup1).write_text(json.dumps({**side, "parent": str(sup2)}))
    with pytest.raises(CheckpointError, match="cycle"):
        lineage_of_checkpoint(sup2)
    with pytest.raises(CheckpointError, match="sidecar missing"):
        lineage_of_checkpoint(tmp_path / "nothing.pt")


def test_runner_checkpoint_lineage(tiny_checkpoint, small_synth_db_path):
    lineage = lineage_of_checkpoint(tiny_checkpoint)
    side = read_sidecar(tiny_checkpoint)
    assert [n["kind"] for n in lineage] == ["supervised", "data"]
    assert lineage[0]["feature_hash"] == side["feature_hash"]
    assert lineage[-1]["train_range"] == [side["data_range"]["start"], side["data_range"]["end"]]
    assert lineage[-1]["db_path"] == str(small_synth_db_path)
    assert "not recorded" in format_lineage(lineage)                # trained outside the pipeline


def test_lineage_of_day(chain, tmp_path):
    _, _, sup2 = chain
    store = ParquetStore(tmp_path / "store")
    store.write(INFERENCE_FRAMES, {"day": "2020-02-03"}, pd.DataFrame({"symbol": ["A", "B"], "position": [0.1, -0.2]}),
                metadata={"checkpoint": str(sup2), "cutoff": "2020-02-01", "data_version": "dv-day"})
    lineage = lineage_of_day(tmp_path / "store", "2020-02-03")
    assert lineage[0]["kind"] == "inference_frame" and lineage[0]["data_version"] == "dv-day"
    assert lineage[0]["rows"] == 2 and lineage[1]["path"] == str(sup2) and lineage[-1]["kind"] == "data"
    assert "inference frame 2020-02-03" in format_lineage(lineage)
    with pytest.raises(PartitionKeyError, match="no inference frame for 2020-02-04; stored days: 2020-02-03$"):
        lineage_of_day(tmp_path / "store", "2020-02-04")
    with pytest.raises(PartitionKeyError, match="not a date"):
        lineage_of_day(tmp_path / "store", "someday")
