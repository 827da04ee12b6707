"""Feature values against independent references: ``ta`` per symbol, pandas, plain loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from plusultra_core.features import FeaturePipeline

from .panels import random_panel, single_symbol

N_DAYS = 400


@pytest.fixture(scope="module")
def one():
    """One symbol's OHLCV (plain Series indexed by timestamp) and our features for it."""
    panel = single_symbol(random_panel(n_symbols=2, n_days=N_DAYS, seed=11, ragged=False), "SYM1")
    feats = FeaturePipeline().transform_panel(panel)
    bars = panel.droplevel("symbol")
    return bars, feats.droplevel("symbol")


def _close(ours: pd.Series, ref, rtol=1e-9, skip: int = 0):
    """Compare where the reference is defined; NaN patterns must agree after ``skip`` rows."""
    ref = pd.Series(np.asarray(ref, dtype=float), index=ours.index).iloc[skip:]
    ours = ours.iloc[skip:]
    assert (ours.isna() == ref.isna()).all(), f"{ours.name}: NaN pattern differs from reference"
    assert ref.notna().sum() > 50, f"{ours.name}: too few defined values to compare"
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=rtol, atol=1e-12,
                               equal_nan=True, err_msg=str(ours.name))


# ---- against ta ---------------------------------------------------------------------------

def test_oscillators_match_ta(one):
    ta = pytest.importorskip("ta")
    b, f = one
    h, l, c = b["high"], b["low"], b["close"]
    _close(f["rsi_14"], ta.momentum.RSIIndicator(c, 14).rsi() / 100)
    macd = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    _close(f["macd_line"], macd.macd() / c)
    _close(f["macd_signal"], macd.macd_signal() / c)
    _close(f["macd_hist"], macd.macd_diff() / c)
    stoch = ta.momentum.StochasticOscillator(h, l, c, window=14, smooth_window=3)
    _close(f["stoch_k_14"], stoch.stoch() / 100)
    _close(f["stoch_d_14"], stoch.stoch_signal() / 100)
    _close(f["cci_20"], ta.trend.CCIIndicator(h, l, c, window=20).cci() / 100)
    _close(f["williams_r_14"], ta.momentum.WilliamsRIndicator(h, l, c, lbp=14).williams_r() / 100)


def test_volatility_and_trend_match_ta(one):
    ta = pytest.importorskip("ta")
    b, f = one
    h, l, c = b["high"], b["low"], b["close"]
    # ta fills ATR's warm-up with zeros instead of NaN: compare from the first defined row
    atr = ta.volatility.AverageTrueRange(h, l, c, window=14).average_true_range()
    _close(f["atr_14"], atr / c, skip=13)
    bb = ta.volatility.BollingerBands(c, window=20, window_dev=2)
    _close(f["bb_pctb_20"], bb.bollinger_pband())
    _close(f["bb_width_20"], bb.bollinger_wband() / 100)
    ema = lambda n: ta.trend.EMAIndicator(c, n).ema_indicator()  # noqa: E731
    _close(f["ema_cross_12_26"], ema(12) / ema(26) - 1)
    _close(f["ema_cross_5_20"], ema(5) / ema(20) - 1)
    _close(f["sma_ratio_50"], c / ta.trend.SMAIndicator(c, 50).sma_indicator() - 1)
    obv = ta.volume.OnBalanceVolumeIndicator(c, b["volume"]).on_balance_volume()
    _close(f["obv_slope_20"], obv.diff(20) / b["volume"].rolling(20).sum(), skip=20)


# ---- against pandas / direct formulas ------------------------------------------------------

def test_returns_and_rolling_stats_match_pandas(one):
    b, f = one
    c = b["close"]
    r = c.pct_change()
    _close(f["ret_1d"], r)
    _close(f["logret_1d"], np.log(c / c.shift(1)))
    _close(f["mom_60"], c / c.shift(60) - 1)
    _close(f["ret_overnight"], b["open"] / c.shift(1) - 1)
    _close(f["sma_ratio_20"], c / c.rolling(20).mean() - 1)
    _close(f["vol_std_20"], r.rolling(20).std())
    _close(f["vol_std_60"], r.rolling(60).std())
    _close(f["skew_60"], r.rolling(60).skew(), rtol=1e-7)
    _close(f["kurt_60"], r.rolling(60).kurt(), rtol=1e-7)
    lv = np.log1p(b["volume"])
    _close(f["logvol_z_20"], (lv - lv.rolling(20).mean()) / lv.rolling(20).std(), rtol=1e-8)
    _close(f["volume_ratio_20"], b["volume"] / b["volume"].rolling(20).mean())


def test_range_volatility_matches_formulas(one):
    b, f = one
    o, h, l, c = b["open"], b["high"], b["low"], b["close"]
    hl = np.log(h / l)
    _close(f["vol_parkinson_20"], np.sqrt((hl ** 2).rolling(20).mean() / (4 * np.log(2))))
    gk = 0.5 * hl ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    _close(f["vol_garman_klass_20"], np.sqrt(gk.rolling(20).mean()))
    rs = np.log(h / c) * np.log(h / o) + np.log(l / c) * np.log(l / o)
    _close(f["vol_rogers_satchell_20"], np.sqrt(rs.rolling(20).mean()))
    k = 0.34 / (1.34 + 21 / 19)
    yz = (np.log(o / c.shift(1)).rolling(20).var() + k * np.log(c / o).rolling(20).var()
          + (1 - k) * rs.rolling(20).mean())
    _close(f["vol_yang_zhang_20"], np.sqrt(yz), rtol=1e-8)


def test_adx_matches_plain_wilder_loop(one):
    b, f = one
    h, l, c = (b[x].to_numpy() for x in ("high", "low", "close"))
    n, t = 14, len(c)
    tr = np.r_[np.nan, np.maximum(h[1:], c[:-1]) - np.minimum(l[1:], c[:-1])]
    up, dn = np.r_[np.nan, h[1:] - h[:-1]], np.r_[np.nan, l[:-1] - l[1:]]
    pdm = np.where((up > dn) & (up > 0), up, 0.0)
    mdm = np.where((dn > up) & (dn > 0), dn, 0.0)

    def wilder(x, first):
        out = np.full(t, np.nan)
        out[first + n - 1] = x[first:first + n].mean()
        for i in range(first + n, t):
            out[i] = out[i - 1] * (n - 1) / n + x[i] / n
        return out

    atr = wilder(tr, 1)
    pdi, mdi = wilder(pdm, 1) / atr, wilder(mdm, 1) / atr
    dx = np.abs(pdi - mdi) / (pdi + mdi)
    adx = wilder(dx, n)
    _close(f["adx_14"], adx)
    _close(f["di_diff_14"], pdi - mdi)


def test_spectral_share_matches_per_window_fft(one):
    b, f = one
    lr = np.log(b["close"] / b["close"].shift(1)).to_numpy()
    for i in (64, 100, 399):
        p = np.abs(np.fft.rfft(lr[i - 63:i + 1]))[1:] ** 2
        assert f["spec_dom_share_64"].iloc[i] == pytest.approx(p.max() / p.sum(), rel=1e-12)
        assert f["spec_dom_period_64"].iloc[i] == pytest.approx(1 / (p.argmax() + 1))
    assert np.isnan(f["spec_dom_share_64"].iloc[63])           # needs 64 returns


def test_calendar_features():
    idx = pd.MultiIndex.from_arrays(
        [pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-14", "2024-02-28", "2024-03-04"]),
         ["A"] * 5], names=["timestamp", "symbol"])
    panel = pd.DataFrame({"close": np.arange(1.0, 6.0)}, index=idx)
    f = FeaturePipeline(tags=["calendar"]).transform_panel(panel)
    dow = np.array([2, 3, 2, 2, 0])                            # Wed Thu Wed Wed Mon
    np.testing.assert_allclose(f["cal_dow_sin"], np.sin(2 * np.pi * dow / 7), atol=1e-15)
    np.testing.assert_allclose(f["cal_month_cos"], np.cos(2 * np.pi * np.array([0, 1, 1, 1, 2]) / 12),
                               atol=1e-15)
    assert f["cal_turn_of_month"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]  # Feb 2024 has 29 days


def test_cross_sectional_rank_matches_scipy():
    panel = random_panel(n_symbols=5, n_days=80, seed=5)
    f = FeaturePipeline(names=["mom_20", "xs_rank_mom_20"]).transform_panel(panel)
    wide = f["mom_20"].unstack("symbol")
    ranks = f["xs_rank_mom_20"].unstack("symbol")
    for t, row in wide.iterrows():
        ok = row.notna()
        if ok.sum() < 2:
            continue
        expected = (rankdata(row[ok]) - 1) / (ok.sum() - 1)
        np.testing.assert_allclose(ranks.loc[t, ok], expected, atol=1e-15)
        assert ranks.loc[t, ~ok].isna().all()
    # ties share the mean rank
    from plusultra_core.features.families.cross_section import cross_sectional_rank
    got = cross_sectional_rank(np.array([[1.0, 2.0, 2.0, np.nan, 0.0], [np.nan, 3.0, np.nan, np.nan, np.nan]]))
    np.testing.assert_allclose(got, [[1 / 3, 5 / 6, 5 / 6, np.nan, 0.0], [np.nan, 0.5, np.nan, np.nan, np.nan]])


def test_alternative_features_match_formulas():
    panel = random_panel(n_symbols=1, n_days=N_DAYS, seed=8, ragged=False)
    f = FeaturePipeline(tags=["alternative"]).transform_panel(panel).droplevel("symbol")
    b = panel.droplevel("symbol")
    vix = b["mkt_vix_close"]
    _close(f["alt_vix_z_252"], (vix - vix.rolling(252).mean()) / vix.rolling(252).std(), rtol=1e-8)
    _close(f["alt_vix_chg_5"], np.log(vix / vix.shift(5)))
    _close(f["alt_oil_ret_20"], b["mkt_wti_close"] / b["mkt_wti_close"].shift(20) - 1)
    _close(f["alt_cpi_yoy"], b["mkt_core_cpi_value"] / b["mkt_core_cpi_value"].shift(252) - 1)
    _close(f["alt_ff_mkt_mean_63"], b["mkt_ff_mkt_rf"].rolling(63).mean())
