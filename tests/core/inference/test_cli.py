"""``plusultra infer`` / ``plusultra lineage``: output, files, export, and exit code 2 on bad input."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd

from plusultra_core.data.contract import PREDICTIONS
from plusultra_core.training.checkpoints import sidecar_path
from plusultra_pipeline.cli import main

DAY = "2002-02-01"


def test_infer_prints_writes_and_exports(tiny_checkpoint, small_synth_db_path, copy_db, tmp_path, capsys):
    db = copy_db(small_synth_db_path)
    out = tmp_path / "preds.parquet"
    code = main(["infer", "--checkpoint", str(tiny_checkpoint), "--date", DAY, "--db", str(db),
                 "--out", str(out), "--export", "--max-rows", "4"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "2002-02-01  (6 symbols)" in printed and "p_buy" in printed and "pred_vol" in printed
    assert "portfolio: gross=" in printed and "VaR99(hist)=" in printed and "... 2 more" in printed
    frame = pd.read_parquet(out)
    assert len(frame) == 6 and set(frame["symbol"]) == {f"S000{i}" for i in range(6)}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT symbol, position, checkpoint_id FROM {PREDICTIONS} ORDER BY symbol").fetchall()
    assert [r[0] for r in rows] == sorted(frame["symbol"])
    assert {r[2] for r in rows} == set(frame["checkpoint_id"])
    assert [r[1] for r in rows] == frame.sort_values("symbol")["position"].tolist()


def test_infer_bad_input_exits_2_with_one_line(tiny_checkpoint, small_synth_db_path, tmp_path, capsys):
    def run(*argv):
        code = main(["infer", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        return err

    ck = str(tiny_checkpoint)
    assert "nope.pt" in run("--checkpoint", str(tmp_path / "nope.pt"), "--date", DAY)
    assert "'2002-13-01' is not a date" in run("--checkpoint", ck, "--date", "2002-13-01")
    assert "before --date" in run("--checkpoint", ck, "--date", DAY, "--end", "2002-01-01")
    assert "missing.sqlite" in run("--checkpoint", ck, "--date", DAY, "--db", str(tmp_path / "missing.sqlite"))
    assert "no predictions for 2002-02-02..2002-02-02" in run("--checkpoint", ck, "--date", "2002-02-02",
                                                               "--db", str(small_synth_db_path))
    assert ".parquet or .csv" in run("--checkpoint", ck, "--date", DAY, "--out", str(tmp_path / "x.txt"))
    # a pretraining-only sidecar is refused
    bad = tmp_path / "bad.pt"
    shutil.copyfile(tiny_checkpoint, bad)
    sidecar_path(bad).write_text(sidecar_path(tiny_checkpoint).read_text().replace('"kind": "supervised"',
                                                                                 '"kind": "pretrain"'))
    assert "pretraining checkpoint" in run("--checkpoint", str(bad), "--date", DAY)
    assert not (tmp_path / "x.txt").exists()


def test_lineage_command(tiny_checkpoint, tmp_path, capsys):
    assert main(["lineage", str(tiny_checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "supervised temporal_hybrid" in printed and "feature_hash=" in printed and "data  version=" in printed
    assert main(["lineage", "2020-01-02", "--store", str(tmp_path)]) == 2
    assert "no inference frame for 2020-01-02" in capsys.readouterr().err
    assert main(["lineage", str(tmp_path / "gone.pt"), "--store", str(tmp_path)]) == 2
    assert f"checkpoint not found: {tmp_path / 'gone.pt'}" in capsys.readouterr().err


def test_infer_warns_on_days_the_checkpoint_was_trained_on(tiny_checkpoint, small_synth_db_path, tmp_path, capsys):
    """The tiny checkpoint saw the whole database: its predictions there are in-sample."""
    import json

    args = ["--date", DAY, "--db", str(small_synth_db_path), "--max-rows", "1"]
    assert main(["infer", "--checkpoint", str(tiny_checkpoint), *args]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"plusultra infer: warning: {DAY} is inside the checkpoint's "
                                               "training range 2000-01-03..") and "in-sample" in err[0]
    # a checkpoint whose training ended before the day: no warning
    early = tmp_path / "early.pt"
    shutil.copyfile(tiny_checkpoint, early)
    side = json.loads(sidecar_path(tiny_checkpoint).read_text())
    sidecar_path(early).write_text(json.dumps({**side, "train_range": ["2000-01-03", "2001-12-31"]}))
    assert main(["infer", "--checkpoint", str(early), *args]) == 0
    assert capsys.readouterr().err == ""
