"""Fold scoring: next-bar alignment, costs, equal-weight portfolios, seeds and their ensemble, the
exposure-matched buy-and-hold, the PnL split, coverage, bad inputs, file round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from plusultra_core import metrics as M
from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation import FoldResult, evaluate_fold
from plusultra_core.evaluation.book import DECISION_COLUMNS, EXPOSURE_MATCHED
from tests.core.evaluation.synthetic import FEATURES, make_frame, perfect_foresight

R = [np.nan, 0.01, -0.02, 0.03, -0.01, 0.02, 0.01, -0.015]


def _frame(returns: dict[str, list[float]], start="2021-01-04") -> pd.DataFrame:
    parts = []
    for sym, r in returns.items():
        ts = pd.date_range(start, periods=len(r), freq="B").as_unit("ns")
        r = np.asarray(r, np.float64)
        parts.append(pd.DataFrame({"timestamp": ts, "symbol": sym, "ret_1d": r.astype(np.float32),
                                   "valid": np.isfinite(r)}))
    return pd.concat(parts, ignore_index=True)


def _preds(frame: pd.DataFrame, positions, expected=None) -> pd.DataFrame:
    out = frame[["timestamp", "symbol"]].copy()
    out["position"] = positions
    out["expected_return"] = np.nan if expected is None else expected
    return out


def _evaluate(preds, frame, cost_bps=0.0, baselines=(), **kw):
    ts = frame["timestamp"]
    return evaluate_fold(preds, frame, ts.min(), ts.max() + pd.Timedelta(days=1), cost_bps=cost_bps,
                         baselines=baselines, **kw)


def test_position_at_t_earns_the_next_bar_return_hand_computed():
    frame = _frame({"A": R})
    r32 = frame["ret_1d"].to_numpy(np.float64)                 # the float32 values the frame holds
    pos = np.array([1.0, -1.0, 0.5, 0.5, 0.0, -1.0, 1.0, 1.0])
    result = _evaluate(_preds(frame, pos), frame, cost_bps=10.0)
    daily = result.daily["model"].to_numpy()
    # 7 decisions have a next bar (the last row's outcome is unknown); cost 0.001 per unit traded
    c = 0.001
    expected = [pos[0] * r32[1] - c * 1.0,           # enter +1 from flat
                pos[1] * r32[2] - c * 2.0,           # +1 -> -1
                pos[2] * r32[3] - c * 1.5,           # -1 -> 0.5
                pos[3] * r32[4] - 0.0,               # hold
                pos[4] * r32[5] - c * 0.5,           # 0.5 -> 0
                pos[5] * r32[6] - c * 1.0,           # 0 -> -1
                pos[6] * r32[7] - c * 2.0]           # -1 -> +1
    np.testing.assert_allclose(daily, expected, rtol=0, atol=1e-15)
    # never the same bar: the same-bar PnL differs from what was booked
    costs = pos[:7] * r32[1:] - np.asarray(expected)
    same_bar = pos[:7] * np.nan_to_num(r32[:7]) - costs
    assert np.abs(daily - same_bar).max() > 0.01
    book = result.positions
    assert (book["realised_at"] > book["timestamp"]).all()
    np.testing.assert_array_equal(book["realised_return"].to_numpy(), r32[1:])
    # daily returns are dated when realised: the next bar after each decision
    assert list(result.daily.index) == list(frame["timestamp"].iloc[1:])


def test_perfect_foresight_earns_the_absolute_next_return():
    frame = make_frame(n_symbols=2, n_days=40, seed=2)
    result = _evaluate(perfect_foresight(frame), frame)
    nxt = frame.groupby("symbol")["ret_1d"].shift(-1).astype(np.float64)
    per_day = np.abs(nxt).groupby(frame["timestamp"]).mean().to_numpy()[:-1]  # the last day has no outcome
    np.testing.assert_allclose(result.daily["model"].to_numpy(), per_day, rtol=1e-12)
    assert result.metrics.at["model", "hit_rate"] == 1.0
    assert result.metrics.at["model", "information_coefficient"] == pytest.approx(1.0)


def test_costs_rise_with_turnover_and_equal_cost_times_turnover():
    frame = make_frame(n_symbols=2, n_days=60, seed=4)
    n = len(frame)
    steady = _evaluate(_preds(frame, np.ones(n)), frame, cost_bps=10.0)
    flipping = _evaluate(_preds(frame, np.where(np.arange(n) % 2 == 0, 1.0, -1.0)), frame, cost_bps=10.0)
    t_steady = steady.metrics.at["model", "turnover"]
    t_flip = flipping.metrics.at["model", "turnover"]
    assert t_flip > 10 * t_steady
    assert flipping.positions["cost"].sum() > 10 * steady.positions["cost"].sum()
    # per day, the cost drag is exactly cost x turnover
    for res in (steady, flipping):
        drag = res.positions.groupby("date")["cost"].mean().reindex(res.daily.index, fill_value=0).mean()
        assert drag == pytest.approx(0.001 * res.metrics.at["model", "turnover"], rel=1e-12)
    # a higher cost on the same positions lowers the return
    dearer = _evaluate(_preds(frame, np.where(np.arange(n) % 2 == 0, 1.0, -1.0)), frame, cost_bps=50.0)
    assert dearer.metrics.at["model", "total_return"] < flipping.metrics.at["model", "total_return"]


def test_buy_and_hold_is_the_compounded_equal_weight_return():
    frame = _frame({"A": R, "B": [np.nan, -0.01, 0.02, 0.0, 0.01, -0.03, 0.02, 0.01]})
    result = _evaluate(_preds(frame, np.zeros(len(frame))), frame, cost_bps=20.0,
                       baselines=("buy_and_hold",))
    a = frame.loc[frame["symbol"] == "A", "ret_1d"].to_numpy(np.float64)[1:]
    b = frame.loc[frame["symbol"] == "B", "ret_1d"].to_numpy(np.float64)[1:]
    ew = (a + b) / 2
    ew[0] -= 0.002                                       # both enter from flat on day one (20 bps)
    np.testing.assert_allclose(result.daily["buy_and_hold"].to_numpy(), ew, atol=1e-15)
    assert result.metrics.at["buy_and_hold", "total_return"] == pytest.approx(np.prod(1 + ew) - 1, rel=1e-12)
    assert result.metrics.at["buy_and_hold", "sharpe_ratio"] == pytest.approx(M.sharpe_ratio(ew), rel=1e-12)


def test_baselines_use_the_models_universe_and_a_missing_bar_holds_the_position():
    frame = _frame({"A": R, "B": R})
    # B has no bar on day 3 (a halt): its day-2 position is held, the day-4 return spans the gap
    frame = frame.drop(frame.index[(frame["symbol"] == "B") & (frame["timestamp"] == frame["timestamp"].iloc[3])])
    frame.loc[(frame["symbol"] == "B") & (frame["timestamp"] == frame["timestamp"].iloc[4]), "ret_1d"] = np.float32(0.05)
    preds = _preds(frame, 1.0)
    # the model has no view on A's first two days -> A is not in the universe there, for any strategy
    preds = preds[~((preds["symbol"] == "A") & (preds["timestamp"] < frame["timestamp"].iloc[2]))]
    result = _evaluate(preds, frame, cost_bps=10.0, baselines=("buy_and_hold",))
    bh = result.positions[result.positions["strategy"] == "buy_and_hold"]
    assert bh.loc[bh["symbol"] == "A", "timestamp"].min() == frame["timestamp"].iloc[2]
    b_rows = bh[bh["symbol"] == "B"]
    assert b_rows["cost"].sum() == pytest.approx(0.001)  # one entry, no trade across the gap
    gap_row = b_rows[b_rows["timestamp"] == frame["timestamp"].iloc[2]]
    assert gap_row["realised_return"].iloc[0] == pytest.approx(0.05)
    assert gap_row["realised_at"].iloc[0] == frame["timestamp"].iloc[4]
    # model and buy-and-hold hold the same long book here, so their returns agree day by day
    np.testing.assert_allclose(result.daily["model"], result.daily["buy_and_hold"])


def test_to_files_round_trip_recomputes_the_reported_numbers(tmp_path):
    frame = make_frame(n_symbols=3, n_days=160, seed=6)
    preds = perfect_foresight(frame)
    preds["position"] = np.clip(preds["expected_return"] / 0.02, -1, 1).fillna(0.0)
    preds["expected_return"] += np.random.default_rng(0).normal(0, 0.01, len(preds))
    result = evaluate_fold(preds, frame, "2020-05-01", "2020-06-01", cost_bps=5.0,
                           feature_names=FEATURES, train_end="2020-05-01", purge=2)
    written = result.to_files(tmp_path / "fold")
    assert {p.name for p in written} == {"daily.parquet", "positions.parquet", "decisions.parquet",
                                         "metrics.csv", "fold.json"}
    back = FoldResult.from_files(tmp_path / "fold")
    assert back.strategies == ["model", "buy_and_hold", "momentum", "linear", EXPOSURE_MATCHED]
    pd.testing.assert_frame_equal(back.decisions, result.decisions)
    pd.testing.assert_frame_equal(back.daily, result.daily)
    pd.testing.assert_frame_equal(back.metrics, result.metrics, check_exact=False, rtol=1e-12)
    assert back.model_name == "model" and back.model_strategies == ["model"] and back.info == result.info
    assert back.period == (pd.Timestamp("2020-05-01"), pd.Timestamp("2020-06-01")) and back.cost_bps == 5.0
    assert json.loads((tmp_path / "fold" / "fold.json").read_text())["info"]["linear"]["purge_bars"] == 2
    for name in back.strategies:
        book = back.positions[back.positions["strategy"] == name]
        # recompute from the saved book alone: pnl, then the equal-weight day, then the metrics
        pnl = book["position"] * book["realised_return"].fillna(0) - 0.0005 * book["change"].abs()
        np.testing.assert_allclose(book["pnl"], pnl, atol=1e-15)
        day = book.groupby("date")["pnl"].mean().reindex(back.daily.index, fill_value=0.0)
        np.testing.assert_allclose(day.to_numpy(), back.daily[name].to_numpy(), atol=1e-15)
        m = back.metrics.loc[name]
        assert m["sharpe_ratio"] == pytest.approx(M.sharpe_ratio(day.to_numpy()), rel=1e-9)
        assert m["max_drawdown"] == pytest.approx(M.max_drawdown(day.to_numpy()), rel=1e-9, abs=1e-15)
        assert m["annual_return"] == pytest.approx(M.annual_return(day.to_numpy()), rel=1e-9)
        assert m["hit_rate"] == pytest.approx(M.hit_rate(book["position"], book["realised_return"]), rel=1e-9)
        ic = M.information_coefficient(book["expected_return"], book["realised_return"])
        assert (math.isnan(ic) and math.isnan(m["information_coefficient"])) or \
            m["information_coefficient"] == pytest.approx(ic, rel=1e-9)
        turnover = book.groupby("date")["change"].apply(lambda c: c.abs().mean())
        assert m["turnover"] == pytest.approx(turnover.reindex(back.daily.index, fill_value=0).mean(), rel=1e-9)
    with pytest.raises(DataValidationError, match="metrics.csv is missing"):
        (tmp_path / "fold" / "metrics.csv").unlink()
        FoldResult.from_files(tmp_path / "fold")


@pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning")
def test_bad_predictions_and_arguments_are_named():
    frame = _frame({"A": R})
    ok = _preds(frame, 1.0)
    with pytest.raises(DataValidationError, match="not finite numbers in \\[-1, 1\\]"):
        _evaluate(ok.assign(position=np.r_[1.5, np.ones(len(frame) - 1)]), frame)
    with pytest.raises(DataValidationError, match="not finite numbers"):
        _evaluate(ok.assign(position=np.r_[np.inf, np.ones(len(frame) - 1)]), frame)
    with pytest.raises(DataValidationError, match="share a \\(symbol, timestamp\\) key"):
        _evaluate(pd.concat([ok, ok.head(1)]), frame)
    with pytest.raises(DataValidationError, match="no bar in the window frame"):
        _evaluate(ok.assign(symbol="ZZZ"), frame)
    with pytest.raises(DataValidationError, match="missing columns \\['position'\\]"):
        _evaluate(ok.drop(columns="position"), frame)
    with pytest.raises(DataValidationError, match="no position in"):
        _evaluate(ok.tail(1), frame)  # the only decision has no next bar yet
    with pytest.raises(DataValidationError, match="'timestamp' does not parse"):
        _evaluate(ok.assign(timestamp="not a date"), frame)
    zoned = ok.assign(timestamp=ok["timestamp"].dt.tz_localize("UTC"))
    assert _evaluate(zoned, frame).daily.equals(_evaluate(ok, frame).daily)  # UTC instants are the same bars
    with pytest.raises(ConfigError, match="cost_bps"):
        _evaluate(ok, frame, cost_bps=-1.0)
    with pytest.raises(ConfigError, match="unknown baselines"):
        _evaluate(ok, frame, baselines=("oracle",))
    with pytest.raises(ConfigError, match="needs feature_names and train_end"):
        _evaluate(ok, frame, baselines=("linear",))
    with pytest.raises(ConfigError, match="baseline's name"):
        _evaluate(ok, frame, baselines=("momentum",), model_name="momentum")


def test_the_last_decision_day_earns_the_first_bar_after_the_fold():
    frame = make_frame(n_symbols=2, n_days=60, seed=3)
    days = np.sort(frame["timestamp"].unique())
    start, end = days[10], days[30]                                  # frame continues after end
    result = evaluate_fold(perfect_foresight(frame), frame, start, end, cost_bps=0.0, baselines=())
    last = result.positions[result.positions["timestamp"] == days[29]]
    assert len(last) == 2 and (last["realised_at"] == days[30]).all() and (last["date"] == days[30]).all()
    first_after = frame[frame["timestamp"] == days[30]].set_index("symbol")["ret_1d"].astype(np.float64)
    np.testing.assert_array_equal(last.set_index("symbol")["realised_return"], first_after.loc[last["symbol"]])
    # every decision day of [start, end) is scored once, dated by the next trading day
    assert list(result.daily.index) == list(days[11:31])
    cov = result.info["coverage"]
    assert cov["decision_days"] == cov["scored_days"] == 20 and cov["scored_symbol_days"] == 40
    assert cov["unscored_symbol_days_no_next_bar"] == cov["unscored_symbol_days_no_model_position"] == 0
    assert result.info["booking"] == "standalone (entry from flat at the fold start)"
    # the same fold on a frame that stops at end cannot score its last day, and says why
    cut = evaluate_fold(perfect_foresight(frame), frame[frame["timestamp"] < end], start, end,
                        cost_bps=0.0, baselines=())
    cov = cut.info["coverage"]
    assert cov["scored_days"] == 19 and cov["unscored_days_no_next_bar"] == 1
    assert cov["unscored_symbol_days_no_next_bar"] == 2
    assert cov["unscored_day_examples"] == f"{str(days[29])[:10]} (no_next_bar)"
    assert cov["no_next_bar_examples"] == f"S0@{str(days[29])[:10]}, S1@{str(days[29])[:10]}"


def test_coverage_counts_symbol_days_without_a_model_position():
    frame = _frame({"A": R, "B": R})
    preds = _preds(frame, 1.0)
    ts = frame["timestamp"]
    preds.loc[(preds["symbol"] == "A") & (preds["timestamp"] <= ts.iloc[1]), "position"] = np.nan
    preds.loc[preds["timestamp"] == ts.iloc[4], "position"] = np.nan      # no view on any symbol
    cov = _evaluate(preds, frame).info["coverage"]
    assert cov["decision_days"] == 8 and cov["symbol_days"] == 16
    assert cov["unscored_days_no_next_bar"] == 1                          # the last day: data ends
    assert cov["unscored_days_no_model_position"] == 1                    # day 4
    assert cov["scored_days"] == 6
    assert cov["unscored_symbol_days_no_next_bar"] == 2
    assert cov["unscored_symbol_days_no_model_position"] == 2 + 2
    assert cov["scored_symbol_days"] == 16 - 2 - 4
    assert cov["no_model_position_examples"].startswith(f"A@{str(ts.iloc[0])[:10]}, A@{str(ts.iloc[1])[:10]}")


def test_seed_strategies_their_ensemble_and_the_shared_universe():
    frame = make_frame(n_symbols=3, n_days=80, seed=11)
    rng = np.random.default_rng(2)
    seeds = {f"hybrid/seed={i}": _preds(frame, rng.uniform(-1, 1, len(frame)), rng.normal(0, 0.01, len(frame)))
             for i in range(3)}
    seeds["hybrid/seed=2"].loc[seeds["hybrid/seed=2"].index[:5], "position"] = np.nan   # S0's first days
    result = evaluate_fold(seeds, frame, "2020-02-03", "2020-04-01", cost_bps=5.0,
                           baselines=("buy_and_hold", "momentum"), ensemble_name="hybrid/ensemble")
    assert result.strategies == ["hybrid/seed=0", "hybrid/seed=1", "hybrid/seed=2", "hybrid/ensemble",
                                 "buy_and_hold", "momentum", EXPOSURE_MATCHED]
    assert result.model_name == "hybrid/ensemble"
    assert result.model_strategies == ["hybrid/seed=0", "hybrid/seed=1", "hybrid/seed=2"]
    dec = result.decisions
    assert list(dec.columns) == DECISION_COLUMNS
    wide = dec.pivot_table(index=["symbol", "timestamp"], columns="strategy", values="position", dropna=False)
    universe = dec[dec["strategy"] == "hybrid/seed=0"].set_index(["symbol", "timestamp"])["in_universe"]
    seed_cols = result.model_strategies
    np.testing.assert_array_equal(universe.reindex(wide.index), wide[seed_cols].notna().all(axis=1))
    inside = universe.reindex(wide.index).to_numpy()
    np.testing.assert_allclose(wide.loc[inside, "hybrid/ensemble"], wide.loc[inside, seed_cols].mean(axis=1),
                               rtol=0, atol=1e-15)
    assert wide.loc[~inside, "hybrid/ensemble"].isna().all()
    # booked ensemble positions are the seeds' mean, and every strategy books the same universe
    book = result.positions
    ens = book[book["strategy"] == "hybrid/ensemble"].set_index(["symbol", "timestamp"])["position"]
    mean = book[book["strategy"].isin(seed_cols)].groupby(["symbol", "timestamp"])["position"].mean()
    np.testing.assert_allclose(ens, mean.reindex(ens.index), atol=1e-15)
    active = book.groupby("strategy")["timestamp"].count()
    assert active.nunique() == 1
    with pytest.raises(ConfigError, match="baseline's name or used twice"):
        evaluate_fold(seeds, frame, "2020-02-03", "2020-04-01", cost_bps=5.0, baselines=(),
                      ensemble_name="hybrid/seed=0")
    with pytest.raises(DataValidationError, match=r"predictions\[bad\]: missing columns"):
        evaluate_fold({"bad": seeds["hybrid/seed=0"].drop(columns="position")}, frame, "2020-02-03",
                      "2020-04-01", cost_bps=5.0, baselines=())


def test_exposure_matched_buy_and_hold_is_the_primarys_average_exposure():
    frame = make_frame(n_symbols=3, n_days=80, seed=12)
    preds = _preds(frame, np.random.default_rng(3).uniform(-0.2, 0.6, len(frame)))
    result = evaluate_fold(preds, frame, "2020-02-03", "2020-04-01", cost_bps=10.0,
                           baselines=("buy_and_hold",))
    book = result.positions
    model = book[book["strategy"] == "model"]
    exposure = result.info["exposure"]["position"]
    assert exposure == pytest.approx(model["position"].mean(), rel=1e-12) and 0 < exposure < 0.4
    matched = book[book["strategy"] == EXPOSURE_MATCHED]
    bh = book[book["strategy"] == "buy_and_hold"]
    np.testing.assert_array_equal(matched["position"], exposure)
    gross = lambda rows: (rows["position"] * rows["realised_return"]).groupby(rows["date"]).mean()
    np.testing.assert_allclose(gross(matched), exposure * gross(bh), rtol=1e-12)
    # a constant position trades only on entry: its cost is the exposure times buy-and-hold's
    assert matched["cost"].sum() == pytest.approx(exposure * bh["cost"].sum(), rel=1e-12)


def test_bias_plus_timing_minus_cost_is_the_mean_net_return():
    frame = make_frame(n_symbols=3, n_days=120, seed=13)
    preds = perfect_foresight(frame).assign(position=lambda p: 0.3 + 0.5 * p["position"])
    result = evaluate_fold(preds, frame, "2020-02-03", "2020-06-01", cost_bps=20.0,
                           feature_names=FEATURES, train_end="2020-02-03", purge=1)
    m = result.metrics
    for name in result.strategies:
        identity = m.at[name, "bias_return"] + m.at[name, "timing_return"] - m.at[name, "cost_drag"]
        assert identity == pytest.approx(result.daily[name].mean() * 252, rel=1e-10, abs=1e-14)
    # buy-and-hold is all bias; perfect foresight around a 0.3 long is mostly timing
    assert m.at["buy_and_hold", "timing_return"] == pytest.approx(0.0, abs=1e-12)
    assert m.at["model", "timing_return"] > 5 * abs(m.at["model", "bias_return"])
    assert m.at["model", "cost_drag"] > m.at["buy_and_hold", "cost_drag"] > 0


def test_challengers_are_their_own_strategies_beside_the_seed_ensemble():
    frame = make_frame(n_symbols=3, n_days=80, seed=12)
    rng = np.random.default_rng(3)

    def preds():
        return _preds(frame, rng.uniform(-1, 1, len(frame)), rng.normal(0, 0.01, len(frame)))

    seeds = {f"hybrid/seed={i}": preds() for i in range(2)}
    rivals = {f"hybrid/rl/seed={i}": preds() for i in range(2)}
    late = rivals["hybrid/rl/seed=1"]
    late.loc[late.index[(late["timestamp"] >= "2020-02-10").to_numpy()][:4], "position"] = np.nan   # in the fold
    result = evaluate_fold(seeds, frame, "2020-02-03", "2020-04-01", cost_bps=5.0, baselines=("buy_and_hold",),
                           ensemble_name="hybrid/ensemble", challengers=rivals,
                           challenger_ensemble="hybrid/rl/ensemble")
    assert result.strategies == ["hybrid/seed=0", "hybrid/seed=1", "hybrid/ensemble", "hybrid/rl/seed=0",
                                 "hybrid/rl/seed=1", "hybrid/rl/ensemble", "buy_and_hold", EXPOSURE_MATCHED]
    assert result.model_name == "hybrid/ensemble" and result.model_strategies == list(seeds)
    wide = result.decisions.pivot_table(index=["symbol", "timestamp"], columns="strategy", values="position",
                                        dropna=False)
    inside = wide[list(seeds) + list(rivals)].notna().all(axis=1)          # one universe for all
    assert (~inside).sum() >= 4 and wide.loc[~inside, "hybrid/ensemble"].isna().all()
    np.testing.assert_allclose(wide.loc[inside, "hybrid/ensemble"], wide.loc[inside, list(seeds)].mean(axis=1),
                               atol=1e-15)                                  # the seeds' mean, no challenger in it
    np.testing.assert_allclose(wide.loc[inside, "hybrid/rl/ensemble"], wide.loc[inside, list(rivals)].mean(axis=1),
                               atol=1e-15)
    assert result.info["challengers"] == list(rivals)
    with pytest.raises(ConfigError, match="baseline's name or used twice"):
        evaluate_fold(seeds, frame, "2020-02-03", "2020-04-01", cost_bps=5.0, baselines=(),
                      challengers={"hybrid/seed=0": preds()})
    with pytest.raises(ConfigError, match="no challengers"):
        evaluate_fold(seeds, frame, "2020-02-03", "2020-04-01", cost_bps=5.0, baselines=(),
                      challenger_ensemble="x")
