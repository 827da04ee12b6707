"""Leaderboard: the folds' decisions re-booked as one continuous record -- every decision day once,
the book carried across folds, coverage stated, gaps and overlaps refused -- and the metrics on it
(PnL split, exposure-matched buy-and-hold, cost grid, deflated Sharpe with its trial count)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from plusultra_core import metrics as M
from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation import FoldResult, evaluate_fold
from plusultra_core.evaluation.book import EXPOSURE_MATCHED
from plusultra_core.evaluation.leaderboard import build_leaderboard
from plusultra_core.losses import pnl_stream
from tests.core.evaluation.synthetic import FEATURES, make_frame, perfect_foresight

FRAME = make_frame(n_symbols=3, n_days=200, seed=8)
PREDS = perfect_foresight(FRAME).assign(
    position=lambda p: np.clip(p["expected_return"].fillna(0) / 0.03, -1, 1)
    * np.random.default_rng(1).choice([1.0, -1.0], len(p), p=[0.6, 0.4]))
CUTS = ["2020-05-01", "2020-06-01", "2020-07-01", "2020-08-03"]
DAYS = np.sort(FRAME["timestamp"].unique())
COST = 5.0


def _fold(start, end, preds=PREDS, frame=FRAME, **kw):
    return evaluate_fold(preds, frame, start, end, cost_bps=kw.pop("cost_bps", COST),
                         feature_names=FEATURES, train_end=start, purge=2, **kw)


@pytest.fixture(scope="module")
def folds():
    return [_fold(a, b) for a, b in zip(CUTS, CUTS[1:])]


@pytest.fixture(scope="module")
def board(folds):
    return build_leaderboard(list(reversed(folds)))               # the input order does not matter


def _days_in(start, end) -> np.ndarray:
    return DAYS[(DAYS >= np.datetime64(start)) & (DAYS < np.datetime64(end))]


def test_every_decision_day_is_scored_once_and_dated_by_the_next_trading_day(board):
    days = _days_in(CUTS[0], CUTS[-1])
    nxt = DAYS[np.searchsorted(DAYS, days, side="right")]
    for name in board.daily.columns:
        book = board.positions[board.positions["strategy"] == name]
        decided = np.sort(book["timestamp"].unique())
        np.testing.assert_array_equal(decided, days)
        assert not book.duplicated(["symbol", "timestamp"]).any()
        # each symbol-day earns the next trading day's bar
        np.testing.assert_array_equal(book["realised_at"].to_numpy(),
                                      DAYS[np.searchsorted(DAYS, book["timestamp"].to_numpy(), side="right")])
    np.testing.assert_array_equal(board.daily.index.to_numpy(), nxt)
    total = board.coverage.loc["total"]
    assert total["decision_days"] == total["scored_days"] == len(days)
    assert total["scored_symbol_days"] == total["symbol_days"] == 3 * len(days)
    assert list(board.coverage.index) == [*CUTS[:-1], "total"]
    assert list(board.coverage["decision_days"][:-1]) == [len(_days_in(a, b)) for a, b in zip(CUTS, CUTS[1:])]


def test_the_last_day_of_a_fold_is_scored_with_the_next_folds_first_bar(board):
    for boundary in CUTS[1:-1]:
        last = _days_in(CUTS[0], boundary)[-1]
        first_next = _days_in(boundary, CUTS[-1])[0]
        rows = board.positions[(board.positions["timestamp"] == last) & (board.positions["strategy"] == "model")]
        assert len(rows) == 3 and (rows["realised_at"] == first_next).all() and (rows["date"] == first_next).all()
        bar = FRAME[FRAME["timestamp"] == first_next].set_index("symbol")["ret_1d"].astype(np.float64)
        np.testing.assert_array_equal(rows["realised_return"], bar.loc[rows["symbol"]])
        assert first_next in board.daily.index


def test_buy_and_hold_over_chained_folds_pays_exactly_one_entry(folds, board):
    bh = board.positions[board.positions["strategy"] == "buy_and_hold"]
    entries = bh[bh["change"] != 0]
    assert len(entries) == 3 and (entries["timestamp"] == _days_in(CUTS[0], CUTS[1])[0]).all()
    assert bh["cost"].sum() == pytest.approx(3 * COST * 1e-4, rel=1e-12)  # one entry per symbol
    # the standalone folds each pay an entry again: the continuous record does not
    standalone = sum(f.positions.loc[f.positions["strategy"] == "buy_and_hold", "cost"].sum() for f in folds)
    assert standalone == pytest.approx(3 * bh["cost"].sum(), rel=1e-12)
    first_days = [board.daily.index[board.daily.index > np.datetime64(c)][0] for c in CUTS[1:-1]]
    chained = pd.concat([f.daily for f in folds])
    for day in first_days:  # a fold boundary: the chained record has no re-entry cost
        assert board.daily.at[day, "buy_and_hold"] == pytest.approx(chained.at[day, "buy_and_hold"] + COST * 1e-4)


def test_rebooked_daily_returns_equal_a_direct_pnl_stream_over_the_concatenated_positions(folds, board):
    decisions = pd.concat([f.decisions for f in folds], ignore_index=True)
    for name in ("model", "buy_and_hold", "momentum", "linear"):
        d = decisions[decisions["strategy"] == name]
        assert d["in_universe"].all()                  # the model decides every symbol-day here
        pos = d.pivot(index="symbol", columns="timestamp", values="position").fillna(0.0).to_numpy()
        ret = d.pivot(index="symbol", columns="timestamp", values="realised_return").to_numpy()
        pnl = pnl_stream(pos, ret, COST * 1e-4, initial_position=0.0)   # [symbols, days], one book
        np.testing.assert_allclose(board.daily[name].to_numpy(), pnl.mean(axis=0), rtol=0, atol=1e-15)
    # the metrics are those of that series
    for name in board.daily.columns:
        r = board.daily[name].to_numpy()
        row = board.table.loc[name]
        assert row["sharpe_ratio"] == pytest.approx(M.sharpe_ratio(r), rel=1e-12)
        assert row["annual_return"] == pytest.approx(M.annual_return(r), rel=1e-12)
        assert row["max_drawdown"] == pytest.approx(M.max_drawdown(r), rel=1e-12, abs=1e-15)
        assert row["probabilistic_sharpe_ratio"] == pytest.approx(M.probabilistic_sharpe_ratio(r), rel=1e-12)
    assert (np.diff(board.table["sharpe_ratio"].to_numpy()) <= 0).all()   # ranked best first
    assert list(board.folds["start"]) == [pd.Timestamp(c) for c in CUTS[:-1]]


def test_gaps_overlaps_double_booking_and_mismatched_folds_are_errors(folds):
    with pytest.raises(DataValidationError, match=r"folds overlap: \[2020-05-01, 2020-06-01\) and "
                                                  r"\[2020-05-15, 2020-06-15\)"):
        build_leaderboard([folds[0], _fold("2020-05-15", "2020-06-15")])
    with pytest.raises(DataValidationError, match=r"folds leave a gap: .* no fold decides \[2020-06-01, 2020-07-01\)"):
        build_leaderboard([folds[0], folds[2]])
    doubled = dataclasses.replace(folds[1], decisions=pd.concat([folds[1].decisions, folds[0].decisions.tail(3)]))
    with pytest.raises(DataValidationError, match="booked twice"):
        build_leaderboard([folds[0], doubled])
    fewer = _fold("2020-06-01", "2020-07-01", baselines=("buy_and_hold",))
    with pytest.raises(DataValidationError, match="same strategies"):
        build_leaderboard([folds[0], fewer])
    with pytest.raises(DataValidationError, match="cost"):
        build_leaderboard([folds[0], dataclasses.replace(folds[1], cost_bps=10.0)])
    with pytest.raises(ConfigError, match="n_trials"):
        build_leaderboard(folds, n_trials=0)


def test_exposure_matched_buy_and_hold_uses_the_whole_records_exposure(folds, board):
    model = board.positions[board.positions["strategy"] == "model"]
    assert board.exposure == pytest.approx(model["position"].mean(), rel=1e-12)
    assert board.exposure != pytest.approx(folds[0].info["exposure"]["position"], rel=1e-6)
    np.testing.assert_allclose(board.folds["exposure"], [f.info["exposure"]["position"] for f in folds])
    book = board.positions.assign(gross=lambda b: b["position"] * b["realised_return"])
    gross = book.pivot_table(index="date", columns="strategy", values="gross", aggfunc="mean")
    np.testing.assert_allclose(gross[EXPOSURE_MATCHED], board.exposure * gross["buy_and_hold"], rtol=1e-12)


def test_bias_plus_timing_minus_cost_is_the_mean_daily_net_return(board):
    t = board.table
    identity = t["bias_return"] + t["timing_return"] - t["cost_drag"]
    np.testing.assert_allclose(identity.to_numpy(), board.daily[t.index].mean().to_numpy() * 252,
                               rtol=1e-10, atol=1e-14)
    assert t.at["buy_and_hold", "timing_return"] == pytest.approx(0.0, abs=1e-12)
    assert t.at["model", "timing_return"] > 10 * abs(t.at["model", "bias_return"])


def test_cost_grid_rows_equal_the_book_at_that_cost(folds, board):
    grid = board.cost_sensitivity
    assert sorted(grid.index.get_level_values("cost_bps").unique()) == [0.0, 5.0, 10.0, 20.0]
    own = grid.xs(COST, level="cost_bps")
    for col in ("sharpe_ratio", "annual_return", "total_return", "max_drawdown"):
        np.testing.assert_allclose(own[col].reindex(board.table.index), board.table[col], rtol=1e-12)
    np.testing.assert_allclose(own["cost_drag"].reindex(board.table.index), board.table["cost_drag"], rtol=1e-12)
    # a row at another cost is what evaluating every fold at that cost and chaining gives
    dearer = build_leaderboard([_fold(a, b, cost_bps=20.0) for a, b in zip(CUTS, CUTS[1:])], cost_grid=())
    at20 = grid.xs(20.0, level="cost_bps")
    np.testing.assert_allclose(at20["sharpe_ratio"].reindex(dearer.table.index), dearer.table["sharpe_ratio"],
                               rtol=1e-12)
    assert (grid.xs(0.0, level="cost_bps")["annual_return"] >= at20["annual_return"]).all()
    assert list(dearer.cost_sensitivity.index.get_level_values("cost_bps").unique()) == [20.0]


def test_deflated_sharpe_records_the_trial_count_and_variance(board, folds):
    trials = [c for c in board.daily.columns if c != EXPOSURE_MATCHED]
    per_period = [M.sharpe_ratio(board.daily[c].to_numpy(), periods_per_year=1) for c in trials]
    variance = float(np.var(per_period, ddof=1))
    assert board.n_trials == 4 and board.trial_variance == pytest.approx(variance, rel=1e-12)
    r = board.daily["model"].to_numpy()
    assert board.table.loc["model", "deflated_sharpe_ratio"] == pytest.approx(
        M.deflated_sharpe_ratio(r, n_trials=4, sharpe_variance=variance), rel=1e-12)
    given = build_leaderboard(folds, n_trials=200, trial_sharpe_variance=0.004, cost_grid=())
    assert given.n_trials == 200 and given.trial_variance == 0.004 and "given" in given.trial_variance_source
    assert given.table.loc["model", "deflated_sharpe_ratio"] == pytest.approx(
        M.deflated_sharpe_ratio(r, n_trials=200, sharpe_variance=0.004), rel=1e-12)
    more = build_leaderboard(folds, n_trials=200, cost_grid=())
    dsr = board.table["deflated_sharpe_ratio"]
    assert (more.table["deflated_sharpe_ratio"].reindex(dsr.index) <= dsr + 1e-15).all()
    assert (dsr <= board.table["probabilistic_sharpe_ratio"] + 1e-15).all()


def test_seed_folds_chain_with_their_ensemble_as_the_primary():
    rng = np.random.default_rng(4)
    seeds = {f"hybrid/seed={i}": PREDS.assign(position=np.clip(PREDS["position"] + rng.normal(0, 0.5, len(PREDS)), -1, 1))
             for i in range(2)}
    folds = [evaluate_fold(seeds, FRAME, a, b, cost_bps=COST, baselines=("buy_and_hold",),
                           ensemble_name="hybrid/ensemble") for a, b in zip(CUTS[:3], CUTS[1:3])]
    board = build_leaderboard(folds, cost_grid=())
    assert board.model_name == "hybrid/ensemble" and board.model_strategies == ["hybrid/seed=0", "hybrid/seed=1"]
    assert list(board.daily.columns) == [*board.model_strategies, "hybrid/ensemble", "buy_and_hold", EXPOSURE_MATCHED]
    book = board.positions.set_index(["strategy", "symbol", "timestamp"])["position"]
    np.testing.assert_allclose(book.loc["hybrid/ensemble"],
                               (book.loc["hybrid/seed=0"] + book.loc["hybrid/seed=1"]) / 2, atol=1e-15)
    assert board.exposure == pytest.approx(book.loc["hybrid/ensemble"].mean(), rel=1e-12)
    assert board.n_trials == 4                     # seeds, ensemble, buy-and-hold; not the derived one


def test_a_frame_ending_at_the_last_fold_end_states_the_unscored_day(folds):
    cut = FRAME[FRAME["timestamp"] < np.datetime64(CUTS[-1])]
    last = _fold(CUTS[-2], CUTS[-1], frame=cut)
    board = build_leaderboard([*folds[:-1], last], cost_grid=())
    total = board.coverage.loc["total"]
    final_day = str(_days_in(CUTS[0], CUTS[-1])[-1])[:10]
    assert total["unscored_days_no_next_bar"] == 1 and total["unscored_symbol_days_no_next_bar"] == 3
    assert total["scored_days"] == total["decision_days"] - 1
    assert board.coverage.loc[CUTS[-2], "unscored_day_examples"] == f"{final_day} (no_next_bar)"
    assert len(board.daily) == len(_days_in(CUTS[0], CUTS[-1])) - 1


def test_a_round_trip_through_files_gives_identical_numbers(folds, board, tmp_path):
    for i, fold in enumerate(folds):
        fold.to_files(tmp_path / f"fold{i}")
    back = build_leaderboard([FoldResult.from_files(tmp_path / f"fold{i}") for i in range(len(folds))])
    pd.testing.assert_frame_equal(back.daily, board.daily)
    pd.testing.assert_frame_equal(back.table, board.table)
    pd.testing.assert_frame_equal(back.cost_sensitivity, board.cost_sensitivity)
    pd.testing.assert_frame_equal(back.coverage, board.coverage)
    pd.testing.assert_frame_equal(back.positions, board.positions)
    assert (back.n_trials, back.trial_variance, back.exposure) == (board.n_trials, board.trial_variance,
                                                                   board.exposure)


def test_text_table_lists_every_strategy_aligned(board):
    text = board.to_text()
    for name in ("model", "buy_and_hold", "momentum", "linear", EXPOSURE_MATCHED, "Sharpe", "DSR"):
        assert name in text
    rows = [line for line in text.splitlines() if "│" in line or "┃" in line]
    assert len(rows) == 6 and len({len(line) for line in rows}) == 1
