"""Wide-matrix kernels against pandas and exact two-pass formulas, including precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from plusultra_core.features import kernels as k


@pytest.fixture(scope="module")
def prices():
    rng = np.random.default_rng(0)
    x = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((3000, 3)), axis=0)) * [1, 1e2, 1e4]
    x[500, 1] = np.nan                                          # one hole in one column
    return x


@pytest.mark.parametrize("w", [1, 3, 20, 252])
def test_rolling_sum_mean_extremes_match_pandas(prices, w):
    df = pd.DataFrame(prices)
    for ours, ref in [(k.rolling_sum(prices, w), df.rolling(w).sum()),
                      (k.rolling_mean(prices, w), df.rolling(w).mean()),
                      (k.rolling_max(prices, w), df.rolling(w).max()),
                      (k.rolling_min(prices, w), df.rolling(w).min())]:
        np.testing.assert_allclose(ours, ref.to_numpy(), rtol=1e-12, equal_nan=True)


def test_rolling_mean_min_periods_skips_nans(prices):
    ours = k.rolling_mean(prices, 20, min_periods=10)
    ref = pd.DataFrame(prices).rolling(20, min_periods=10).mean().to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("w", [5, 20, 252])
def test_rolling_std_is_accurate_on_large_prices(prices, w):
    """Blocked, re-centred sums match an exact two-pass std to ~1e-11 with no drift over time."""
    exact = np.full_like(prices, np.nan)
    exact[w - 1:] = sliding_window_view(prices, w, axis=0).std(axis=-1, ddof=1)
    ours = k.rolling_std(prices, w)
    assert np.array_equal(np.isnan(ours), np.isnan(exact))
    rel = np.nanmax(np.abs(ours - exact) / exact)
    assert rel < 1e-9
    # late rows are as accurate as early ones (no cumulative-sum drift)
    assert np.nanmax(np.abs(ours[-500:] - exact[-500:]) / exact[-500:]) < 1e-9


def test_moments_match_pandas(prices):
    r = np.diff(np.log(prices), axis=0)
    df = pd.DataFrame(r)
    np.testing.assert_allclose(k.rolling_skew(r, 60), df.rolling(60).skew(), rtol=1e-8, atol=1e-10,
                               equal_nan=True)
    np.testing.assert_allclose(k.rolling_kurt(r, 60), df.rolling(60).kurt(), rtol=1e-8, atol=1e-9,
                               equal_nan=True)


def test_ewm_matches_pandas_with_leading_nans(prices):
    x = prices[:, :1].repeat(2, axis=1)
    x[:7, 1] = np.nan                                           # column 1 starts later
    ours = k.ewm(x, span=26, min_periods=26)
    ref = pd.DataFrame(x).ewm(span=26, min_periods=26, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)


def test_wilder_is_seeded_by_the_simple_mean():
    x = np.array([[np.nan], [1.0], [2.0], [3.0], [7.0]])
    out = k.wilder(x, 3)[:, 0]
    assert np.isnan(out[:3]).all()
    assert out[3] == pytest.approx(2.0) and out[4] == pytest.approx(2.0 * 2 / 3 + 7 / 3)


def test_ffill_never_fills_backwards():
    x = np.array([[np.nan], [1.0], [np.nan], [3.0]])
    np.testing.assert_array_equal(k.ffill(x)[:, 0], [np.nan, 1.0, 1.0, 3.0])
