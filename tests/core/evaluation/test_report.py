"""Reports: Markdown/HTML/PNG files exist and carry the numbers; writes are all-or-nothing."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from plusultra_core import metrics as M
from plusultra_core.evaluation import evaluate_fold
from plusultra_core.evaluation.leaderboard import build_leaderboard
from plusultra_core.evaluation.plots import wealth_and_drawdown
from plusultra_core.evaluation.report import (markdown_with_inline_png, write_fold_report,
                                              write_leaderboard_report)
from tests.core.evaluation.synthetic import FEATURES, make_frame, perfect_foresight

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def folds():
    frame = make_frame(n_symbols=2, n_days=140, seed=9)
    preds = perfect_foresight(frame).assign(position=lambda p: 0.5 * p["position"])
    return [evaluate_fold(preds, frame, a, b, cost_bps=5.0, feature_names=FEATURES, train_end=a, purge=1)
            for a, b in [("2020-04-01", "2020-05-01"), ("2020-05-01", "2020-06-01")]]


def test_fold_report_files(folds, tmp_path):
    files = write_fold_report(folds[0], tmp_path / "fold", "Fold 2020-04")
    assert files.markdown.is_file() and files.html.is_file() and files.png.is_file()
    assert files.png.read_bytes().startswith(PNG_MAGIC) and files.png.stat().st_size > 5000
    md = files.markdown.read_text()
    assert "](equity.png)" in md and "[2020-04-01, 2020-05-01)" in md and "5 bps" in md
    sharpe = folds[0].metrics.loc["buy_and_hold", "sharpe_ratio"]
    assert f"{sharpe:.4g}" in md
    page = files.html.read_text()
    uri = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert uri and base64.b64decode(uri.group(1)) == files.png.read_bytes()
    assert f"{sharpe:.4g}" in page and "<table>" in page
    assert (tmp_path / "fold" / "data" / "positions.parquet") in files.paths
    assert (tmp_path / "fold" / "data" / "decisions.parquet") in files.paths
    assert "standalone (entry from flat at the fold start)" in md and "decision days" in md
    assert not list((tmp_path / "fold").rglob("*.tmp"))


def test_leaderboard_report_files(folds, tmp_path):
    board = build_leaderboard(folds)
    files = write_leaderboard_report(board, tmp_path / "board")
    assert files.png.read_bytes().startswith(PNG_MAGIC)
    md = files.markdown.read_text()
    assert "2 walk-forward folds" in md and "](equity.png)" in md
    # ranked by Sharpe: the model (perfect foresight, half size) is listed first
    first_row = [line for line in md.splitlines() if line.startswith("| ")][1]
    assert first_row.startswith("| model |")
    assert "data:image/png;base64," in files.html.read_text()
    assert (tmp_path / "board" / "leaderboard.csv").is_file()
    # the continuous record states its booking, coverage, trial count and cost sensitivity
    total = board.coverage.loc["total"]
    assert "one continuous book" in md and "flat only before the first fold" in md
    assert f"{total['scored_days']} of {total['decision_days']} decision days" in md
    assert f"best of {board.n_trials} trials" in md and f"{board.trial_variance:.3g}" in md
    assert "Sharpe @ 20 bps" in md and "buy_and_hold@exposure" in md
    for name in ("coverage.csv", "cost_sensitivity.csv", "daily.csv"):
        assert (tmp_path / "board" / name).is_file()


def test_markdown_with_inline_png_round_trips_the_bytes():
    payload = PNG_MAGIC + b"not really a png"
    md = markdown_with_inline_png(payload, body="## Metrics\n\n| a |")
    assert md.startswith("## Metrics")
    encoded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", md).group(1)
    assert base64.b64decode(encoded) == payload


def test_drawdown_plot_data_matches_max_drawdown(folds):
    _, drawdown = wealth_and_drawdown(folds[0].daily)
    for name in folds[0].daily.columns:
        assert drawdown[name].min() == pytest.approx(M.max_drawdown(folds[0].daily[name].to_numpy()), abs=1e-15)


def test_failed_write_leaves_the_old_report_whole(folds, tmp_path, monkeypatch):
    directory = tmp_path / "fold"
    write_fold_report(folds[0], directory, "Fold 2020-04")
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)  # the data files come last
    with pytest.raises(OSError, match="disk full"):
        write_fold_report(folds[0], directory, "Another title")
    assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == before
