"""Leaderboard: chained folds equal metrics on the chained series; overlaps and mismatches fail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from plusultra_core import metrics as M
from plusultra_core.errors import DataValidationError
from plusultra_core.evaluation import evaluate_fold
from plusultra_core.evaluation.leaderboard import build_leaderboard
from tests.core.evaluation.synthetic import FEATURES, make_frame, perfect_foresight

FRAME = make_frame(n_symbols=3, n_days=200, seed=8)
PREDS = perfect_foresight(FRAME).assign(
    position=lambda p: np.clip(p["expected_return"].fillna(0) / 0.03, -1, 1)
    * np.random.default_rng(1).choice([1.0, -1.0], len(p), p=[0.6, 0.4]))
CUTS = ["2020-05-01", "2020-06-01", "2020-07-01"]


def _fold(start, end, **kw):
    return evaluate_fold(PREDS, FRAME, start, end, cost_bps=kw.pop("cost_bps", 5.0),
                         feature_names=FEATURES, train_end=start, purge=2, **kw)


@pytest.fixture(scope="module")
def folds():
    return [_fold(a, b) for a, b in zip(CUTS, CUTS[1:])]


def test_chained_record_equals_metrics_on_the_concatenated_series(folds):
    board = build_leaderboard(list(reversed(folds)))      # order of the input does not matter
    chained = pd.concat([f.daily for f in folds])
    pd.testing.assert_frame_equal(board.daily, chained)
    assert len(board.daily) == len(folds[0].daily) + len(folds[1].daily)
    for name in chained.columns:
        r = chained[name].to_numpy()
        row = board.table.loc[name]
        assert row["sharpe_ratio"] == pytest.approx(M.sharpe_ratio(r), rel=1e-12)
        assert row["annual_return"] == pytest.approx(M.annual_return(r), rel=1e-12)
        assert row["max_drawdown"] == pytest.approx(M.max_drawdown(r), rel=1e-12, abs=1e-15)
        assert row["probabilistic_sharpe_ratio"] == pytest.approx(M.probabilistic_sharpe_ratio(r), rel=1e-12)
    # the chained record is not the average of the fold metrics (it is recomputed on the whole series)
    assert board.table.loc["buy_and_hold", "sharpe_ratio"] != pytest.approx(
        np.mean([f.metrics.loc["buy_and_hold", "sharpe_ratio"] for f in folds]))
    sharpe = board.table["sharpe_ratio"].to_numpy()
    assert (np.diff(sharpe) <= 0).all()                    # ranked best first
    assert list(board.folds["start"]) == [pd.Timestamp(c) for c in CUTS[:2]]


def test_deflated_sharpe_uses_the_strategy_count_and_their_sharpe_variance(folds):
    board = build_leaderboard(folds)
    per_period = [M.sharpe_ratio(board.daily[c].to_numpy(), periods_per_year=1) for c in board.daily]
    variance = float(np.var(per_period, ddof=1))
    r = board.daily["model"].to_numpy()
    assert board.n_trials == 4
    assert board.table.loc["model", "deflated_sharpe_ratio"] == pytest.approx(
        M.deflated_sharpe_ratio(r, n_trials=4, sharpe_variance=variance), rel=1e-12)
    more = build_leaderboard(folds, n_trials=200)
    dsr = board.table["deflated_sharpe_ratio"]
    assert (more.table["deflated_sharpe_ratio"].reindex(dsr.index) <= dsr + 1e-15).all()
    assert (dsr <= board.table["probabilistic_sharpe_ratio"] + 1e-15).all()


def test_overlapping_or_mismatched_folds_are_errors(folds):
    overlapping = _fold("2020-05-15", "2020-06-15")
    with pytest.raises(DataValidationError, match="folds overlap"):
        build_leaderboard([folds[0], overlapping])
    fewer = _fold("2020-06-01", "2020-07-01", baselines=("buy_and_hold",))
    with pytest.raises(DataValidationError, match="same strategies"):
        build_leaderboard([folds[0], fewer])
    dearer = dataclasses.replace(folds[1], cost_bps=10.0)
    with pytest.raises(DataValidationError, match="cost"):
        build_leaderboard([folds[0], dearer])


def test_text_table_lists_every_strategy_aligned(folds):
    text = build_leaderboard(folds).to_text()
    for name in ("model", "buy_and_hold", "momentum", "linear", "Sharpe", "DSR"):
        assert name in text
    rows = [line for line in text.splitlines() if "│" in line or "┃" in line]
    assert len(rows) == 5 and len({len(line) for line in rows}) == 1
