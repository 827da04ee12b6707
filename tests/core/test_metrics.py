"""Metrics against hand-computed vectors, empyrical's edge-case behaviour and S&P 500 reference values."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from plusultra_core import metrics as M

R = np.array([0.01, -0.02, 0.03, -0.01, 0.02])


def test_hand_computed_small_vector():
    # mean 0.006, sample var = sum((r - 0.006)^2) / 4
    dev = R - 0.006
    std = math.sqrt(float(dev @ dev) / 4)
    assert M.sharpe_ratio(R) == pytest.approx(0.006 / std * math.sqrt(252), rel=1e-12)
    assert M.annual_volatility(R) == pytest.approx(std * math.sqrt(252), rel=1e-12)
    # downside over all 5 periods: sqrt((0.02^2 + 0.01^2) / 5)
    dr = math.sqrt((0.0004 + 0.0001) / 5)
    assert M.downside_risk(R) == pytest.approx(dr * math.sqrt(252), rel=1e-12)
    assert M.sortino_ratio(R) == pytest.approx(0.006 * 252 / (dr * math.sqrt(252)), rel=1e-12)
    wealth = np.cumprod(1 + R)  # 1.01, 0.9898, 1.019494, 1.00929906, 1.0294850412
    assert M.annual_return(R) == pytest.approx(wealth[-1] ** (252 / 5) - 1, rel=1e-12)
    # peak 1.019494 -> trough 1.00929906: -1%; earlier 1.01 -> 0.9898: -2% (the max)
    assert M.max_drawdown(R) == pytest.approx(-0.02, rel=1e-12)
    assert M.calmar_ratio(R) == pytest.approx(M.annual_return(R) / 0.02, rel=1e-12)


def test_required_return_and_risk_free_shift():
    assert M.sharpe_ratio(R, risk_free=0.001) == pytest.approx(M.sharpe_ratio(R - 0.001), rel=1e-12)
    dr = math.sqrt(((0.01 - 0.01) ** 2 + 0.03 ** 2 + 0 + 0.02 ** 2 + 0) / 5) * math.sqrt(252)
    assert M.downside_risk(R, required_return=0.01) == pytest.approx(dr, rel=1e-12)


def test_first_period_loss_is_a_drawdown_from_starting_capital():
    assert M.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)
    # compounded, not summed: two -10% days are -19%
    assert M.max_drawdown([-0.1, -0.1]) == pytest.approx(-0.19)


def test_all_negative_returns():
    r = np.full(10, -0.01)
    assert M.max_drawdown(r) == pytest.approx(0.99 ** 10 - 1)
    assert M.annual_return(r) == pytest.approx(0.99 ** 252 - 1)
    assert M.calmar_ratio(r) < 0
    assert M.sortino_ratio(r) < 0


def test_constant_and_degenerate_inputs_follow_empyrical():
    # zero volatility: the IEEE quotient (inf for a positive mean, NaN for 0/0), never a crash
    assert M.sharpe_ratio(np.full(8, 0.25)) == math.inf
    assert math.isnan(M.sharpe_ratio(np.zeros(8)))
    assert M.annual_volatility(np.full(8, 0.25)) == 0.0
    # no losing period: downside deviation 0 -> Sortino +inf; no drawdown -> Calmar NaN
    up = np.array([0.01, 0.02, 0.01])
    assert M.sortino_ratio(up) == math.inf
    assert M.max_drawdown(up) == 0.0
    assert math.isnan(M.calmar_ratio(up))
    for f in (M.sharpe_ratio, M.sortino_ratio, M.annual_volatility):
        assert math.isnan(f([])) and math.isnan(f([0.01]))
    for f in (M.annual_return, M.max_drawdown, M.downside_risk, M.calmar_ratio):
        assert math.isnan(f([]))
    assert M.annual_return([0.01]) == pytest.approx(1.01 ** 252 - 1)


def test_nans_are_ignored_like_empyrical():
    with_nan = np.array([0.01, np.nan, -0.02, 0.03, -0.01, 0.02])
    assert M.sharpe_ratio(with_nan) == pytest.approx(M.sharpe_ratio(R), rel=1e-12)
    assert M.sortino_ratio(with_nan) == pytest.approx(M.sortino_ratio(R), rel=1e-12)
    assert M.max_drawdown(with_nan) == pytest.approx(M.max_drawdown(R), rel=1e-12)
    # CAGR keeps the NaN period in the period count (empyrical: len(returns) / ppy years)
    assert M.annual_return(with_nan) == pytest.approx(np.prod(1 + R) ** (252 / 6) - 1, rel=1e-12)
    assert math.isnan(M.sharpe_ratio([0.01, np.nan]))


def test_turnover_counts_entry_from_flat():
    assert M.turnover([1, 1, 1, 1]) == pytest.approx(0.25)
    assert M.turnover([1, -1, 1, -1]) == pytest.approx((1 + 2 + 2 + 2) / 4)
    assert M.turnover([0.5, np.nan, 0.5]) == pytest.approx((0.5 + 0.5 + 0.5) / 3)
    two_assets = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert M.turnover(two_assets) == pytest.approx((1 + 2) / 2)
    assert math.isnan(M.turnover([]))


def test_hit_rate_ignores_zero_and_nan():
    pred = np.array([1.0, -1.0, 0.5, 0.0, np.nan, -2.0])
    real = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.0])
    # kept pairs: (1, .1) hit, (-1, .2) miss, (.5, .3) hit
    assert M.hit_rate(pred, real) == pytest.approx(2 / 3)
    assert math.isnan(M.hit_rate([0.0], [1.0]))
    with pytest.raises(ValueError, match="same length"):
        M.hit_rate([1.0, 2.0], [1.0])


def test_information_coefficients():
    x = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    y = np.array([1.0, 4.0, 9.0, 16.0, 3.0])
    expected = np.corrcoef(x[:4], y[:4])[0, 1]
    assert M.information_coefficient(x, y) == pytest.approx(expected, rel=1e-12)
    assert M.rank_information_coefficient(x, y) == pytest.approx(1.0)
    assert M.rank_information_coefficient([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    ties = np.array([1.0, 1.0, 2.0, 3.0])
    other = np.array([4.0, 3.0, 2.0, 1.0])
    assert M.rank_information_coefficient(ties, other) == pytest.approx(
        stats.spearmanr(ties, other).statistic, rel=1e-12)
    assert math.isnan(M.information_coefficient([1, 1, 1], [1, 2, 3]))
    assert math.isnan(M.information_coefficient([1.0], [2.0]))


def test_probabilistic_sharpe_matches_hand_formula():
    rng = np.random.default_rng(0)
    r = rng.standard_t(5, size=500) * 0.01 + 0.0005
    sr = r.mean() / r.std(ddof=1)
    g3 = np.mean((r - r.mean()) ** 3) / np.mean((r - r.mean()) ** 2) ** 1.5
    g4 = np.mean((r - r.mean()) ** 4) / np.mean((r - r.mean()) ** 2) ** 2
    for bench in (0.0, 0.02):
        z = (sr - bench) * math.sqrt(499) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2)
        assert M.probabilistic_sharpe_ratio(r, bench) == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    assert M.probabilistic_sharpe_ratio(r, 0.0) > M.probabilistic_sharpe_ratio(r, 0.02)
    assert math.isnan(M.probabilistic_sharpe_ratio([0.01, 0.02]))
    assert math.isnan(M.probabilistic_sharpe_ratio(np.full(10, 0.25)))


def test_deflated_sharpe_hand_formula_and_monotone_in_trials():
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, size=750)
    v = 0.0004
    emax = math.sqrt(v) * ((1 - M.EULER_GAMMA) * stats.norm.ppf(1 - 1 / 10)
                           + M.EULER_GAMMA * stats.norm.ppf(1 - 1 / (10 * math.e)))
    assert M.expected_max_sharpe(10, v) == pytest.approx(emax, rel=1e-12)
    assert M.deflated_sharpe_ratio(r, 10, sharpe_variance=v) == pytest.approx(
        M.probabilistic_sharpe_ratio(r, emax), rel=1e-12)
    dsrs = [M.deflated_sharpe_ratio(r, n, sharpe_variance=v) for n in (1, 2, 5, 20, 100, 1000)]
    assert all(a > b for a, b in zip(dsrs, dsrs[1:]))
    assert dsrs[0] == pytest.approx(M.probabilistic_sharpe_ratio(r))
    trials = np.array([0.01, 0.03, -0.02, 0.05])
    assert M.deflated_sharpe_ratio(r, 4, trial_sharpes=trials) == pytest.approx(
        M.deflated_sharpe_ratio(r, 4, sharpe_variance=trials.var(ddof=1)), rel=1e-12)
    # default variance = estimation variance of the strategy's own Sharpe; still monotone
    assert M.deflated_sharpe_ratio(r, 50) < M.deflated_sharpe_ratio(r, 2) < M.probabilistic_sharpe_ratio(r)
    with pytest.raises(ValueError, match="n_trials"):
        M.deflated_sharpe_ratio(r, 0, sharpe_variance=v)
    with pytest.raises(ValueError, match="not both"):
        M.deflated_sharpe_ratio(r, 3, sharpe_variance=v, trial_sharpes=trials)


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="returns"):
        M.sharpe_ratio(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="positions"):
        M.turnover(np.zeros((2, 2, 2)))


def test_summary_keys_and_values():
    pos = np.array([1, 1, -1, -1, 1.0])
    s = M.summary(R, positions=pos, pred=pos, realised=R)
    assert s["sharpe_ratio"] == M.sharpe_ratio(R)
    assert s["turnover"] == M.turnover(pos)
    assert s["hit_rate"] == pytest.approx(M.hit_rate(pos, R))
    assert {"calmar_ratio", "max_drawdown", "information_coefficient",
            "rank_information_coefficient", "probabilistic_sharpe_ratio"} <= set(s)
    assert "turnover" not in M.summary(R)
    with pytest.raises(ValueError, match="together"):
        M.summary(R, pred=pos)


def test_sp500_reference_values():
    """Reference numbers for S&P 500 daily returns 1999-01-05..2018-12-31 (empyrical definitions)."""
    spec = importlib.util.find_spec("arch")
    if spec is None:
        pytest.skip("arch (demo extra) not installed")
    # the CSV behind arch.data.sp500.load(), read directly: importing arch costs seconds
    csv = Path(spec.submodule_search_locations[0]) / "data" / "sp500" / "sp500.csv.gz"
    close = pd.read_csv(csv, index_col=0, parse_dates=True)["Adj Close"]
    r = close.pct_change().loc["1999-01-05":"2018-12-31"].to_numpy()
    assert r.size == 5030
    assert M.sharpe_ratio(r) == pytest.approx(0.282739, rel=2e-6)
    assert M.sortino_ratio(r) == pytest.approx(0.398614, rel=2e-6)
    assert M.max_drawdown(r) == pytest.approx(-0.567754, rel=2e-6)
    assert M.annual_return(r) == pytest.approx(0.036396, rel=2e-5)
    assert M.calmar_ratio(r) == pytest.approx(0.064104, rel=2e-5)
    assert M.annual_volatility(r) == pytest.approx(0.190982, rel=2e-6)
