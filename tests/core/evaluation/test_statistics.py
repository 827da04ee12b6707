"""Inference statistics against closed forms, scipy / arch reference values and seeded simulations.

Reference check done outside the suite (the data set is third-party and is not committed): on
Ledoit & Wolf's hedge-fund pair (120 monthly returns shipped with M. Wolf's R code, as
redistributed in github.com/pfnaibert/LW-SR-VAR, DEMO.md), ``sharpe_difference_test(...,
method="hac", periods_per_year=1)`` gives SR1 1.014228, SR2 1.460547, difference -0.4463183,
se 0.3176271 with ``prewhiten=False`` and 0.3872694 with ``prewhiten=True``, p 0.1599724 /
0.2491259 -- R's ``hac.inference`` to all seven printed digits; the bootstrap with b=5 gives
p 0.297 (R's ``boot.time.inference`` printed 0.25 and 0.298 for two runs of M=499 resamples).
In the suite, the HAC error is held to the Jobson-Korkie/Memmel closed form on iid data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import signal, stats

from plusultra_core import metrics as M
from plusultra_core.evaluation import statistics as S

PPY = 252


def _ar1(rng, shape, phi: float) -> np.ndarray:
    """Unit-variance Gaussian AR(1) noise along the last axis (stationary start)."""
    eps = rng.standard_normal(shape) * math.sqrt(1 - phi * phi)
    eps[..., 0] /= math.sqrt(1 - phi * phi)
    return signal.lfilter([1.0], [1.0, -phi], eps, axis=-1)


def _row_sharpe(r: np.ndarray) -> np.ndarray:
    return r.mean(axis=-1) / r.std(axis=-1, ddof=1)


# ----------------------------------------------------------------------------------- Sharpe SE

def test_iid_se_is_the_mertens_formula_on_a_fixed_vector():
    r = np.array([0.012, -0.004, 0.031, -0.022, 0.008, 0.015, -0.011, 0.027, -0.035, 0.006, np.nan])
    x = r[~np.isnan(r)]
    sr = x.mean() / x.std(ddof=1)
    g3 = np.mean((x - x.mean()) ** 3) / x.std() ** 3
    g4 = np.mean((x - x.mean()) ** 4) / x.std() ** 4
    expected = math.sqrt((1 + sr ** 2 / 2 - g3 * sr + (g4 - 3) / 4 * sr ** 2) / x.size)
    assert S.sharpe_standard_error(r) == pytest.approx(expected, rel=1e-12)


def test_lo_se_without_lags_is_the_iid_formula_at_the_population_sharpe():
    r = np.random.default_rng(3).gamma(2.0, 0.01, 400) - 0.012  # skewed, kurtotic
    sr0 = r.mean() / r.std()
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    expected = math.sqrt((1 - g3 * sr0 + (g4 - 1) / 4 * sr0 ** 2) / r.size)
    assert S.sharpe_standard_error(r, method="lo", lags=0) == pytest.approx(expected, rel=1e-10)


def test_iid_se_matches_the_monte_carlo_spread_for_gaussian_returns():
    rng = np.random.default_rng(0)
    r = 0.1 + rng.standard_normal((4000, 500))  # per-period Sharpe 0.1
    mc_std = _row_sharpe(r).std(ddof=1)
    se = np.mean([S.sharpe_standard_error(row) for row in r[:200]])
    assert se == pytest.approx(mc_std, rel=0.06)
    assert se == pytest.approx(math.sqrt((1 + 0.1 ** 2 / 2) / 500), rel=0.02)  # Lo's normal case


def test_iid_se_tracks_skewness_where_the_normal_formula_does_not():
    # Negatively skewed returns (skew -1.63, kurtosis 7) at Sharpe 0.2 have a ~17% wider spread.
    rng = np.random.default_rng(1)
    r = 0.2 - (rng.chisquare(3, (4000, 400)) - 3) / math.sqrt(6)
    mc_std = _row_sharpe(r).std(ddof=1)
    se = np.mean([S.sharpe_standard_error(row) for row in r[:300]])
    assert se == pytest.approx(mc_std, rel=0.07)
    normal_se = math.sqrt((1 + 0.2 ** 2 / 2) / 400)
    assert normal_se < 0.9 * mc_std


def test_lo_se_widens_for_autocorrelated_returns_and_matches_monte_carlo():
    rng = np.random.default_rng(2)
    r = 0.05 + _ar1(rng, (2000, 1000), phi=0.3)  # true spread ~ sqrt(1.3 / 0.7) = 1.36x the iid one
    mc_std = _row_sharpe(r).std(ddof=1)
    lo = np.mean([S.sharpe_standard_error(row, method="lo") for row in r[:200]])
    iid = np.mean([S.sharpe_standard_error(row) for row in r[:200]])
    assert lo == pytest.approx(mc_std, rel=0.12)
    assert iid < 0.85 * mc_std


def test_se_is_nan_when_undefined_and_rejects_unknown_methods():
    assert math.isnan(S.sharpe_standard_error([0.01, 0.02]))
    assert math.isnan(S.sharpe_standard_error(np.full(50, 0.01)))
    with pytest.raises(ValueError, match="method"):
        S.sharpe_standard_error(np.ones(10), method="hac")


def test_confidence_interval_is_centred_on_metrics_sharpe_and_covers_95_percent():
    rng = np.random.default_rng(4)
    r = 0.001 + 0.01 * rng.standard_normal(300)
    sr, lo, hi = S.sharpe_confidence_interval(r)
    assert sr == pytest.approx(M.sharpe_ratio(r), rel=1e-12)
    half = 1.959963984540054 * S.sharpe_standard_error(r) * math.sqrt(PPY)
    assert (lo, hi) == pytest.approx((sr - half, sr + half), rel=1e-12)

    true_sr = 0.1 * math.sqrt(PPY)
    sims = 0.1 + rng.standard_normal((1000, 250))
    covered = [lo <= true_sr <= hi for _, lo, hi in map(S.sharpe_confidence_interval, sims)]
    assert 0.93 <= np.mean(covered) <= 0.97
    with pytest.raises(ValueError, match="level"):
        S.sharpe_confidence_interval(r, level=95)


# ------------------------------------------------------------------------- Sharpe difference

def _pair(rng, n, sr1, sr2, rho=0.0, vol=(0.01, 0.02)):
    z = rng.standard_normal((n, 2))
    z[:, 1] = rho * z[:, 0] + math.sqrt(1 - rho * rho) * z[:, 1]
    return vol[0] * (sr1 + z[:, 0]), vol[1] * (sr2 + z[:, 1])


def test_hac_se_matches_jobson_korkie_memmel_on_iid_gaussian_pairs():
    """Asymptotic Var(SR1 - SR2) = (2 - 2 rho + (SR1^2 + SR2^2 - 2 SR1 SR2 rho^2) / 2) / n."""
    # Large per-period Sharpe ratios so that the variance-moment terms of the gradient matter.
    n, sr1, sr2, rho = 20000, 0.5, 0.1, 0.6
    r1, r2 = _pair(np.random.default_rng(5), n, sr1, sr2, rho)
    closed = math.sqrt((2 - 2 * rho + (sr1 ** 2 + sr2 ** 2 - 2 * sr1 * sr2 * rho ** 2) / 2) / n)
    for prewhiten in (False, True):
        res = S.sharpe_difference_test(r1, r2, method="hac", prewhiten=prewhiten, periods_per_year=1)
        assert res.se == pytest.approx(closed, rel=0.05)
        assert res.difference == pytest.approx(M.sharpe_ratio(r1, periods_per_year=1)
                                               - M.sharpe_ratio(r2, periods_per_year=1), rel=1e-12)


@pytest.mark.parametrize("prewhiten", [False, True])
def test_hac_se_matches_the_monte_carlo_spread_for_autocorrelated_pairs(prewhiten):
    # AR(1) 0.3 in both series: the iid covariance would understate the spread by ~25%.
    rng = np.random.default_rng(22)
    z = _ar1(rng, (2, 2000, 1000), phi=0.3)
    r1, r2 = 0.1 + z[0], 0.02 + 0.5 * z[0] + math.sqrt(0.75) * z[1]
    mc_std = (_row_sharpe(r1) - _row_sharpe(r2)).std(ddof=1)
    se = np.mean([S.sharpe_difference_test(a, b, method="hac", prewhiten=prewhiten,
                                           periods_per_year=1).se for a, b in zip(r1[:100], r2[:100])])
    assert se == pytest.approx(mc_std, rel=0.12)


@pytest.mark.parametrize("method", ["hac", "bootstrap"])
def test_very_different_sharpe_ratios_are_detected(method):
    rng = np.random.default_rng(6)
    r1, r2 = _pair(rng, 2500, 2.0 / math.sqrt(PPY), -1.0 / math.sqrt(PPY), rho=0.3)
    res = S.sharpe_difference_test(r1, r2, method=method)
    assert res.p_value < 0.01
    assert res.sharpe_1 == pytest.approx(M.sharpe_ratio(r1), rel=1e-12)
    assert res.difference == pytest.approx(res.sharpe_1 - res.sharpe_2, rel=1e-12)
    assert res.ci_low < res.difference < res.ci_high and res.ci_low > 0
    assert res.n == 2500 and res.method == method


@pytest.mark.parametrize("method", ["hac", "bootstrap"])
def test_swapping_the_series_flips_the_difference_and_keeps_the_p_value(method):
    r1, r2 = _pair(np.random.default_rng(7), 800, 0.06, 0.01, rho=0.4)
    a = S.sharpe_difference_test(r1, r2, method=method, seed=3)
    b = S.sharpe_difference_test(r2, r1, method=method, seed=3)
    assert b.difference == pytest.approx(-a.difference, rel=1e-12)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-12)
    assert (b.ci_low, b.ci_high) == pytest.approx((-a.ci_high, -a.ci_low), rel=1e-12)


def test_hac_and_bootstrap_agree_on_a_moderate_difference():
    r1, r2 = _pair(np.random.default_rng(8), 2500, 0.04, 0.0, rho=0.5)
    hac = S.sharpe_difference_test(r1, r2, method="hac")
    boot = S.sharpe_difference_test(r1, r2, method="bootstrap", n_boot=4999)
    assert 0.01 < hac.p_value < 0.5
    assert boot.p_value == pytest.approx(hac.p_value, abs=0.03)
    assert boot.se == hac.se  # the original data are studentized by the HAC error in both
    assert (boot.ci_high - boot.ci_low) == pytest.approx(hac.ci_high - hac.ci_low, rel=0.15)


@pytest.mark.parametrize("method", ["hac", "bootstrap"])
def test_rejection_rate_under_the_null_is_near_the_nominal_level(method):
    """Equal Sharpe ratios, unequal volatilities, correlated, heavy-tailed (t5), AR(1) 0.25.

    Measured over other seeds: 5-8% / 8-12% rejections at the 5% / 10% level; with an iid
    covariance in place of the HAC one, or prewhitening without recolouring, 9-14% / 16-23%.
    """
    rng = np.random.default_rng(9)
    p = []
    for _ in range(300):
        eps = rng.standard_t(5, (2, 500)) / math.sqrt(5 / 3) * math.sqrt(1 - 0.25 ** 2)
        z = signal.lfilter([1.0], [1.0, -0.25], eps, axis=-1)
        z[1] = 0.5 * z[0] + math.sqrt(0.75) * z[1]
        r1, r2 = 0.01 * (0.05 + z[0]), 0.03 * (0.05 + z[1])
        seed = int(rng.integers(1 << 31))
        p.append(S.sharpe_difference_test(r1, r2, method=method, n_boot=199, seed=seed).p_value)
    p = np.asarray(p)
    assert 0.02 <= np.mean(p < 0.05) <= 0.09
    assert 0.05 <= np.mean(p < 0.10) <= 0.15
    assert 0.42 <= p.mean() <= 0.58  # uniform p-values average 1/2


def test_nan_pairs_are_dropped_day_by_day():
    r1, r2 = _pair(np.random.default_rng(10), 300, 0.05, 0.0)
    g1, g2 = r1.copy(), r2.copy()
    g1[[3, 50]], g2[[50, 120, 299]] = np.nan, np.nan
    keep = np.ones(300, bool)
    keep[[3, 50, 120, 299]] = False
    for method in ("hac", "bootstrap"):
        gappy = S.sharpe_difference_test(g1, g2, method=method)
        clean = S.sharpe_difference_test(r1[keep], r2[keep], method=method)
        assert gappy == clean and gappy.n == 296


def test_bootstrap_is_reproducible_by_seed_and_reports_its_settings():
    r1, r2 = _pair(np.random.default_rng(11), 2500, 0.03, 0.0)
    a = S.sharpe_difference_test(r1, r2, seed=1)
    assert a == S.sharpe_difference_test(r1, r2, seed=1)
    assert a.block_size == S.default_block_size(2500) == 14 and a.n_boot == 2000
    assert S.default_block_size(120) == 5  # Ledoit & Wolf's monthly default
    other = S.sharpe_difference_test(r1, r2, seed=2)
    assert other.p_value == pytest.approx(a.p_value, abs=0.03)
    assert S.sharpe_difference_test(r1, r2, method="hac").block_size is None
    assert set(a.to_dict()) >= {"sharpe_1", "difference", "se", "p_value", "ci_low", "ci_high"}


@pytest.mark.parametrize("method", ["hac", "bootstrap"])
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_proportional_series_have_no_difference_and_p_value_one(method, scale):
    # e.g. always long (1.0) or a constant 30% position vs buy-and-hold: equal Sharpe exactly,
    # where the raw quotient of two rounding errors could have come out "significant".
    r = np.random.default_rng(23).normal(0.0005, 0.01, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = S.sharpe_difference_test(scale * r, r, method=method)
    assert (res.difference, res.se, res.ci_low, res.ci_high, res.p_value) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert res.sharpe_1 == res.sharpe_2 == pytest.approx(M.sharpe_ratio(r), rel=1e-12)


def test_degenerate_inputs_give_nans_and_bad_arguments_raise():
    rng = np.random.default_rng(12)
    short = S.sharpe_difference_test(rng.normal(size=5), rng.normal(size=5))
    assert math.isnan(short.p_value) and short.n == 5
    flat = S.sharpe_difference_test(np.full(100, 0.01), rng.normal(size=100), method="hac")
    assert math.isnan(flat.difference) and math.isnan(flat.se)
    with pytest.raises(ValueError, match="aligned"):
        S.sharpe_difference_test(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="method"):
        S.sharpe_difference_test(rng.normal(size=50), rng.normal(size=50), method="jk")
    with pytest.raises(ValueError, match="blocks"):
        S.sharpe_difference_test(rng.normal(size=50), rng.normal(size=50), block_size=30)


# -------------------------------------------------------------------------------- Newey–West

def test_newey_west_lag_rule():
    assert [S.newey_west_lags(n) for n in (100, 1000, 2500)] == [4, 6, 8]


def test_newey_west_without_lags_is_the_one_sample_t():
    x = np.random.default_rng(13).normal(0.1, 1.0, 200)
    nw = S.newey_west_tstat(x, lags=0)
    assert nw.t == pytest.approx(stats.ttest_1samp(x, 0.0).statistic, rel=1e-12)
    assert nw.se == pytest.approx(x.std(ddof=1) / math.sqrt(200), rel=1e-12)
    assert (nw.mean, nw.lags, nw.n) == (pytest.approx(x.mean()), 0, 200)


def test_newey_west_shrinks_the_t_of_a_positively_autocorrelated_series():
    x = 0.1 + _ar1(np.random.default_rng(14), 2000, phi=0.5)
    nw, plain = S.newey_west_tstat(x), S.newey_west_tstat(x, lags=0)
    assert nw.lags == S.newey_west_lags(2000)
    assert 0 < nw.t < 0.75 * plain.t  # the true se ratio is sqrt(3) = 1.73; Bartlett sees most of it
    assert nw.p_value > plain.p_value


def test_newey_west_variance_matches_arch_bartlett():
    kernel = pytest.importorskip("arch.covariance.kernel")
    rng = np.random.default_rng(15)
    x = rng.standard_normal(500).cumsum() * 0.01 + rng.standard_normal(500)
    nw = S.newey_west_tstat(x, lags=7)
    long_run = float(np.asarray(kernel.Bartlett(x, bandwidth=7).cov.long_run)[0, 0])
    # ours carries the n / (n - 1) degrees-of-freedom factor; arch does not
    assert nw.se ** 2 * 500 * 499 / 500 == pytest.approx(long_run, rel=1e-10)


def test_newey_west_drops_nans_and_handles_tiny_input():
    x = np.array([0.1, np.nan, 0.3, 0.2, np.nan, 0.4])
    assert S.newey_west_tstat(x, lags=1) == S.newey_west_tstat(x[~np.isnan(x)], lags=1)
    tiny = S.newey_west_tstat([1.0])
    assert tiny.n == 1 and math.isnan(tiny.t)
    with pytest.raises(ValueError, match="lags"):
        S.newey_west_tstat(x, lags=-1)


# ------------------------------------------------------------------------------------ IC test

def _panel(rng, n_days, symbols_per_day, signal=0.0, common=0.0):
    """Unbalanced long panel: each day carries a random count in ``symbols_per_day``."""
    counts = rng.integers(symbols_per_day[0], symbols_per_day[1] + 1, n_days)
    dates = np.repeat(np.arange(n_days), counts)
    market = rng.standard_normal(n_days)[dates]  # a day's shock shared by all its symbols
    tilt = rng.standard_normal(n_days)[dates]
    expected = common * tilt + rng.standard_normal(dates.size)
    realised = signal * expected + common * market + rng.standard_normal(dates.size)
    return expected, realised, dates


@pytest.mark.parametrize("per_day", [(1, 3), (500, 500)])
def test_daily_contributions_average_to_the_pooled_ic_exactly(per_day):
    e, y, d = _panel(np.random.default_rng(17), 60, per_day, signal=0.2)
    e[5], y[9] = np.nan, np.nan
    days, daily = S.daily_ic_contributions(e, y, d)
    assert days.tolist() == list(range(60)) and daily.size == 60
    assert daily.mean() == pytest.approx(M.information_coefficient(e, y), rel=1e-12)
    _, daily_rank = S.daily_ic_contributions(e, y, d, rank=True)
    assert daily_rank.mean() == pytest.approx(M.rank_information_coefficient(e, y), rel=1e-12)

    res = S.information_coefficient_test(e, y, d)
    assert res.ic == pytest.approx(M.information_coefficient(e, y), rel=1e-12)
    assert res.rank_ic == pytest.approx(M.rank_information_coefficient(e, y), rel=1e-12)
    assert res.t_stat == pytest.approx(S.newey_west_tstat(daily).t, rel=1e-12)
    assert res.rank_t_stat == pytest.approx(S.newey_west_tstat(daily_rank).t, rel=1e-12)
    assert (res.n_days, res.n_pairs, res.lags) == (60, d.size - 2, S.newey_west_lags(60))


def test_balanced_panel_contribution_is_the_days_mean_product():
    e = np.array([1.0, 2.0, 0.5, -1.0, 3.0, 0.0])
    y = np.array([0.2, 0.1, -0.3, 0.4, 0.0, 0.5])
    d = np.array(["2024-01-03", "2024-01-03", "2024-01-02", "2024-01-02", "2024-01-04", "2024-01-04"])
    days, daily = S.daily_ic_contributions(e, y, d)
    ze, zy = (e - e.mean()) / e.std(), (y - y.mean()) / y.std()
    assert days.tolist() == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert daily == pytest.approx([(ze * zy)[2:4].mean(), (ze * zy)[:2].mean(), (ze * zy)[4:].mean()])


def test_ic_t_stat_detects_a_signal_with_two_symbols():
    res = S.information_coefficient_test(*_panel(np.random.default_rng(18), 500, (2, 2), signal=0.2))
    assert res.ic > 0.05 and res.t_stat > 3 and res.p_value < 0.01 and res.rank_t_stat > 3


def test_ic_t_stat_keeps_its_size_when_symbols_move_together():
    # A common daily shock in both expected and realised returns makes the pooled pairs far from
    # independent: sqrt(N) * IC rejects most of the time, the per-date NW t should not.
    rng = np.random.default_rng(19)
    t, naive = [], []
    for _ in range(200):
        e, y, d = _panel(rng, 120, (20, 20), common=1.0)
        res = S.information_coefficient_test(e, y, d)
        t.append(res.t_stat)
        naive.append(res.ic * math.sqrt(res.n_pairs))
    assert np.mean(np.abs(naive) > 1.96) > 0.3
    assert np.mean(np.abs(t) > 1.96) <= 0.11


def test_ic_edge_cases():
    e = np.array([1.0, 2.0, 3.0])
    assert math.isnan(S.information_coefficient_test(e, np.ones(3), [0, 0, 1]).ic)
    one_day = S.information_coefficient_test(e, np.array([1.0, 3.0, 2.0]), [0, 0, 0])
    assert one_day.n_days == 1 and math.isnan(one_day.t_stat) and one_day.ic == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one length"):
        S.daily_ic_contributions(e, e, [0, 1])


# ------------------------------------------------------------------------ benchmark statistics

def test_benchmark_regression_recovers_alpha_and_beta():
    rng = np.random.default_rng(20)
    b = 0.0003 + 0.01 * rng.standard_normal(5000)
    r = 0.0001 + 1.5 * b + 0.0005 * rng.standard_normal(5000)
    r[7], b[11] = np.nan, np.nan
    out = S.benchmark_statistics(r, b)
    keep = ~(np.isnan(r) | np.isnan(b))
    slope, intercept = np.polyfit(b[keep], r[keep], 1)
    assert out["beta"] == pytest.approx(slope, rel=1e-10)
    assert out["beta"] == pytest.approx(1.5, abs=0.01)
    assert out["alpha"] == pytest.approx(intercept * PPY, rel=1e-8)
    assert out["alpha"] == pytest.approx(0.0001 * PPY, abs=0.006)
    assert out["correlation"] == pytest.approx(np.corrcoef(b[keep], r[keep])[0, 1], rel=1e-12)
    active = r[keep] - b[keep]
    assert out["active_return"] == pytest.approx(active.mean() * PPY, rel=1e-12)
    assert out["tracking_error"] == pytest.approx(active.std(ddof=1) * math.sqrt(PPY), rel=1e-12)
    assert out["information_ratio"] == pytest.approx(out["active_return"] / out["tracking_error"])
    assert out["n"] == 4998


def test_benchmark_statistics_degenerate_cases_do_not_warn():
    b = np.random.default_rng(21).normal(0.0, 0.01, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = S.benchmark_statistics(b, b)
        flat = S.benchmark_statistics(b, np.full(100, 0.001))
        short = S.benchmark_statistics([0.01, 0.02], [0.0, 0.01])
    assert same["beta"] == pytest.approx(1.0) and same["alpha"] == pytest.approx(0.0, abs=1e-15)
    assert same["tracking_error"] == 0.0 and math.isnan(same["information_ratio"])
    assert math.isnan(flat["beta"]) and math.isnan(flat["correlation"]) and flat["tracking_error"] > 0
    assert short["n"] == 2 and all(math.isnan(v) for k, v in short.items() if k != "n")
