"""`risk_analytics` against hand computation: two assets, historical and Gaussian VaR / ES."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.inference.risk import risk_analytics

DAY = pd.Timestamp("2024-01-12")


def _history(n: int = 10, extra_after: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    idx = pd.bdate_range(end=DAY, periods=n).append(pd.bdate_range(DAY + pd.Timedelta(days=1), periods=extra_after))
    data = rng.normal(0.0, 0.02, size=(len(idx), 2))
    if extra_after:
        data[-extra_after:] = -0.5          # a crash after the decision day: must not be seen
    return pd.DataFrame(data, index=idx, columns=["AAA", "BBB"])


def _day(positions=(1.0, -0.5), **extra) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": [DAY, DAY], "symbol": ["AAA", "BBB"], "position": list(positions), **extra})


def _hand_quantile(x: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics (numpy's default), written out."""
    s = np.sort(x)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def test_two_asset_var_es_by_hand():
    hist = _history()
    out = risk_analytics(_day(), hist, confidence=0.9, lookback=10, normalize=False)
    port = out["portfolio"]
    r = hist.to_numpy()
    loss = -(r[:, 0] * 1.0 + r[:, 1] * -0.5)
    var_h = _hand_quantile(loss, 0.9)
    assert port["var_historical"] == pytest.approx(var_h, rel=1e-12)
    assert port["es_historical"] == pytest.approx(loss[loss >= var_h].mean(), rel=1e-12)
    # Gaussian: explicit 2x2 covariance
    mu = r.mean(axis=0)
    c = (r - mu).T @ (r - mu) / (len(r) - 1)
    w = np.array([1.0, -0.5])
    sigma = math.sqrt(w[0] ** 2 * c[0, 0] + w[1] ** 2 * c[1, 1] + 2 * w[0] * w[1] * c[0, 1])
    z = norm.ppf(0.9)
    assert port["volatility"] == pytest.approx(sigma, rel=1e-10)
    assert port["var_parametric"] == pytest.approx(z * sigma - w @ mu, rel=1e-10)
    assert port["es_parametric"] == pytest.approx(sigma * norm.pdf(z) / 0.1 - w @ mu, rel=1e-10)
    assert out["per_symbol"]["risk_contribution"].sum() == pytest.approx(port["var_parametric"], rel=1e-10)
    assert port["es_historical"] >= port["var_historical"] > 0
    assert port["gross_exposure"] == 1.5 and port["net_exposure"] == 0.5
    assert port["long_exposure"] == 1.0 and port["short_exposure"] == 0.5 and port["history_days"] == 10


def test_causal_lookback_and_normalisation():
    base = risk_analytics(_day(), _history(30), confidence=0.95, lookback=20)
    # rows after the decision day are ignored
    future = risk_analytics(_day(), _history(30, extra_after=5), confidence=0.95, lookback=20)
    assert base["portfolio"] == future["portfolio"]
    # only the last `lookback` rows count: earlier ones can be anything
    hist = _history(30)
    hist.iloc[:10] = 0.3
    assert risk_analytics(_day(), hist, confidence=0.95, lookback=20)["portfolio"] == base["portfolio"]
    # normalised weights = positions / n: every number scales by 1/2
    raw = risk_analytics(_day(), _history(30), confidence=0.95, lookback=20, normalize=False)
    for key in ("var_historical", "es_historical", "var_parametric", "gross_exposure"):
        assert base["portfolio"][key] == pytest.approx(raw["portfolio"][key] / 2, rel=1e-12)
    np.testing.assert_allclose(base["per_symbol"]["weight"], [0.5, -0.25])


def test_predicted_volatility_realised_and_quantile():
    hist = _history(40)
    out = risk_analytics(_day(), hist, vol_window=20)["per_symbol"]
    np.testing.assert_allclose(out["predicted_volatility"], hist.iloc[-20:].std(ddof=1).to_numpy(), rtol=1e-12)
    assert (out["vol_source"] == "realised").all()
    quant = _day(**{"q_0.05": [-0.03, -0.01], "q_0.5": [0.0, 0.0], "q_0.95": [0.03, 0.02]})
    out = risk_analytics(quant, hist)["per_symbol"]
    np.testing.assert_allclose(out["predicted_volatility"], np.array([0.06, 0.03]) / (2 * norm.ppf(0.95)), rtol=1e-9)
    assert (out["vol_source"] == "quantile").all()
    # a symbol without history: NaN volatility, contributes nothing to VaR
    lone = risk_analytics(_day(), hist[["AAA"]], normalize=False)
    assert np.isnan(lone["per_symbol"]["predicted_volatility"].iloc[1])
    alone = risk_analytics(_day()[:1], hist[["AAA"]], normalize=False)
    assert lone["portfolio"]["var_historical"] == pytest.approx(alone["portfolio"]["var_historical"])


def test_bad_input():
    hist = _history()
    two_days = pd.concat([_day(), _day().assign(timestamp=DAY - pd.Timedelta(days=1))])
    with pytest.raises(DataValidationError, match="exactly one decision day"):
        risk_analytics(two_days, hist)
    with pytest.raises(ConfigError, match="confidence"):
        risk_analytics(_day(), hist, confidence=1.5)
    with pytest.raises(DataValidationError, match="non-finite position"):
        risk_analytics(_day((np.nan, 0.1)), hist)
    with pytest.raises(DataValidationError, match="increasing timestamps"):
        risk_analytics(_day(), hist.iloc[::-1])
