"""``plusultra pretrain`` then ``plusultra train --pretrained`` end to end on a small SQLite file."""

from __future__ import annotations

import json

import yaml

from plusultra_core.training.checkpoints import load_checkpoint
from plusultra_pipeline.cli import main

from .helpers import tiny_params

FEATURES = ["ret_1d", "mom_5", "mom_20", "vol_std_20", "rsi_14"]


def _config(tmp_path, kind: str) -> str:
    raw = {
        "data": {"feature_names": FEATURES, "context_length": 16, "horizon": 2,
                 "train_end": 0.6, "val_end": 0.8, "block_length": 8, "blocks_per_batch": 2},
        "model": {"architecture": "temporal_hybrid", "params": tiny_params("temporal_hybrid")},
        "optim": {"warmup_steps": 2},
        "trainer": {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 4,
                    "progress_bar": False, "tensorboard": False, "num_threads": 1},
        "output_dir": str(tmp_path / "unused"),
    }
    if kind == "train":
        raw["head"] = {"kind": "policy"}
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_cli_pretrain_then_train(tmp_path, small_synth_db_path, capsys):
    pre_out, train_out = tmp_path / "pre", tmp_path / "sup"
    db = ["--db", str(small_synth_db_path)]
    code = main(["pretrain", "--config", _config(tmp_path, "pretrain"), *db, "--out", str(pre_out), "--max-epochs", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    ckpt = pre_out / "pretrained.pt"
    assert f"checkpoint: {ckpt}" in printed and "val/masked_loss" in printed
    code = main(["train", "--config", _config(tmp_path, "train"), *db, "--out", str(train_out), "--pretrained", str(ckpt)])
    printed = capsys.readouterr().out
    assert code == 0 and "val/sharpe" in printed and "test/sharpe" in printed
    state, side = load_checkpoint(train_out / "supervised.pt")
    assert side["parent"] == str(ckpt) and side["feature_names"] == FEATURES
    assert side["data_range"]["symbols"] and side["config"]["trainer"]["max_epochs"] == 2
    assert json.loads((train_out / "supervised.pt.json").read_text())["kind"] == "supervised"
    # the warm start really copied the pretrained backbone (before fine-tuning moved it): same keys
    pre_state, _ = load_checkpoint(ckpt)
    assert {k for k in pre_state if k.startswith("backbone.")} == {k for k in state if k.startswith("backbone.")}


def test_cli_errors_exit_2_with_one_line(tmp_path, small_synth_db_path, capsys):
    cfg = _config(tmp_path, "train")
    assert main(["train", "--config", cfg, "--db", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "database not found" in err and "missing.sqlite" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epoch: 3\n")
    assert main(["pretrain", "--config", str(bad)]) == 2
    assert "'max_epoch'" in capsys.readouterr().err
    assert main(["train", "--config", cfg, "--db", str(small_synth_db_path), "--pretrained", str(tmp_path / "nope.pt"),
                 "--out", str(tmp_path / "o2")]) == 2
    assert "checkpoint not found" in (err := capsys.readouterr().err) and "nope.pt" in err
    assert not (tmp_path / "o2" / "supervised.pt").exists()
