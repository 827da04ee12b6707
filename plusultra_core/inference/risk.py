"""Risk analytics of one decision day's proposed positions: per-symbol volatility, exposure, VaR, ES.

Dimension legend: ``S`` symbols of the day, ``L`` trailing days of return history used.

Everything is causal: only returns stamped at or before the decision day are read (the decision
is made after that day's close, so its own return is known).

- *Weights.* Each symbol is a sleeve of ``1 / S`` of the book scaled by its position in
  ``[-1, 1]`` (``normalize=True``, the default), so exposures, VaR and ES are fractions of the
  book; ``normalize=False`` applies the positions themselves as weights (one unit of capital per
  symbol).
- *Predicted volatility* of the next one-bar return per symbol: from a quantile head's outer
  quantiles, ``(q_hi - q_lo) / (z(hi) - z(lo))`` (the Gaussian sigma with that spread), else the
  trailing realised volatility (sample std, ``ddof=1``) of the last ``vol_window`` returns.
- *Historical VaR / ES.* Today's weights applied to each of the last ``lookback`` days of returns:
  ``pnl = R @ w`` (a missing return counts as 0: the symbol did not move the book that day);
  ``loss = -pnl``; ``VaR = quantile(loss, confidence)`` (numpy's linear interpolation) and
  ``ES = mean(loss[loss >= VaR])``. Both positive numbers mean a loss.
- *Parametric (Gaussian) VaR / ES* with the sample mean and covariance of the same ``L x S``
  matrix: ``sigma_p = sqrt(w' Sigma w)``, ``mu_p = w' mu``, ``VaR = z sigma_p - mu_p``,
  ``ES = sigma_p phi(z) / (1 - confidence) - mu_p``. ``risk_contribution`` per symbol is its
  component VaR ``w_i (z (Sigma w)_i / sigma_p - mu_i)``; they sum to the parametric VaR.
  ``Sigma w`` is ``cov(R, pnl)``, so no ``S x S`` matrix is ever formed.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError

STAGE = "risk_analytics"
PER_SYMBOL_COLUMNS = ("symbol", "weight", "predicted_volatility", "vol_source", "risk_contribution")


def _check(predictions: pd.DataFrame, returns: pd.DataFrame, confidence: float, lookback: int,
           vol_window: int) -> pd.Timestamp:
    if not 0.5 < confidence < 1.0:
        raise ConfigError(f"{STAGE}: confidence must lie in (0.5, 1), got {confidence!r}")
    if lookback < 2 or vol_window < 2:
        raise ConfigError(f"{STAGE}: lookback and vol_window must be >= 2, got {lookback}, {vol_window}")
    missing = [c for c in ("timestamp", "symbol", "position") if c not in predictions.columns]
    if missing:
        raise DataValidationError(f"{STAGE}: predictions lack columns {missing}", table=STAGE,
                                  column=missing[0], check="columns_present")
    days = pd.unique(pd.DatetimeIndex(predictions["timestamp"]))
    if len(days) != 1:
        raise DataValidationError(f"{STAGE}: predictions must hold exactly one decision day, got {len(days)}",
                                  table=STAGE, column="timestamp", check="one_day")
    if predictions["symbol"].duplicated().any():
        dup = predictions.loc[predictions["symbol"].duplicated(), "symbol"].iloc[0]
        raise DataValidationError(f"{STAGE}: symbol {dup} appears twice in one day", table=STAGE,
                                  column="symbol", check="unique_symbols")
    if not isinstance(returns.index, pd.DatetimeIndex) or not returns.index.is_monotonic_increasing:
        raise DataValidationError(f"{STAGE}: returns history must be indexed by increasing timestamps "
                                  "(wide: one column per symbol)", table=STAGE, column="index",
                                  check="sorted_time_index")
    return pd.Timestamp(days[0])


def _quantile_sigma(predictions: pd.DataFrame) -> np.ndarray | None:
    """[S] Gaussian sigma implied by the outermost ``q_<level>`` columns, or None without them."""
    levels = sorted((float(c[2:]), c) for c in predictions.columns
                    if c.startswith("q_") and _is_float(c[2:]))
    if len(levels) < 2:
        return None
    (lo, lo_col), (hi, hi_col) = levels[0], levels[-1]
    z_span = NormalDist().inv_cdf(hi) - NormalDist().inv_cdf(lo)
    return (predictions[hi_col].to_numpy(float) - predictions[lo_col].to_numpy(float)) / z_span


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def risk_analytics(predictions_for_day: pd.DataFrame, returns_history: pd.DataFrame, *,
                   confidence: float = 0.99, lookback: int = 250, vol_window: int = 20,
                   normalize: bool = True) -> dict:
    """Risk of one day's proposed positions (see the module docstring for every definition).

    Args:
        predictions_for_day: rows of one decision day: ``timestamp``, ``symbol``, ``position``
            (and ``q_<level>`` columns from a quantile head, if any).
        returns_history: wide simple returns, index = timestamps (increasing), one column per
            symbol; rows after the decision day are ignored.
        confidence: VaR / ES level (0.99 = the loss exceeded one day in a hundred).
        lookback: trailing days of history for VaR / ES / covariance.
        vol_window: trailing days for the realised-volatility fallback.
        normalize: weights = position / S (fractions of the book) instead of the raw positions.

    Returns:
        ``{"per_symbol": DataFrame[symbol, weight, predicted_volatility, vol_source,
        risk_contribution] (rows in the predictions' order), "portfolio": dict}`` with portfolio
        keys ``timestamp, n_positions, gross_exposure, net_exposure, long_exposure,
        short_exposure, history_days, confidence, var_historical, es_historical,
        var_parametric, es_parametric, volatility``. VaR/ES are NaN with fewer than 2 history days.
    """
    day = _check(predictions_for_day, returns_history, confidence, lookback, vol_window)
    symbols = predictions_for_day["symbol"].astype(str).to_numpy()
    position = predictions_for_day["position"].to_numpy(float)
    if not np.isfinite(position).all():
        raise DataValidationError(f"{STAGE}: non-finite position on {day.date()}", table=STAGE,
                                  column="position", check="finite")
    weight = position / len(position) if normalize and len(position) else position          # [S]

    # causal slice: rows at or before the decision day, the symbols of the day in their order
    past = returns_history.loc[:day].reindex(columns=symbols)                               # [<=day, S]
    hist = past.iloc[-lookback:].to_numpy(float)                                             # [L, S]
    recent = past.iloc[-vol_window:].to_numpy(float)                                         # [V, S]

    sigma_q = _quantile_sigma(predictions_for_day)
    if sigma_q is not None:
        pred_vol, source = sigma_q, "quantile"
    else:
        n_obs = np.isfinite(recent).sum(axis=0)                                              # [S]
        with warnings.catch_warnings():  # all-NaN / single-observation columns: NaN, set below
            warnings.simplefilter("ignore", RuntimeWarning)
            pred_vol = np.nanstd(recent, axis=0, ddof=1) if len(recent) else np.full(len(symbols), np.nan)
        pred_vol = np.where(n_obs >= 2, pred_vol, np.nan)
        source = "realised"

    filled = np.nan_to_num(hist, nan=0.0)                                                    # [L, S]
    L = filled.shape[0]
    pnl = filled @ weight                                                                    # [L]
    nan = float("nan")
    var_h = es_h = var_p = es_p = vol_p = nan
    contribution = np.full(len(symbols), nan)
    if L >= 2:
        loss = -pnl
        var_h = float(np.quantile(loss, confidence))
        es_h = float(loss[loss >= var_h].mean())
        z = NormalDist().inv_cdf(confidence)
        mu = filled.mean(axis=0)                                                             # [S]
        centred = filled - mu                                                                # [L, S]
        sigma_w = centred.T @ (pnl - pnl.mean()) / (L - 1)                                   # [S] = Sigma w
        vol_p = float(np.sqrt(max(float(weight @ sigma_w), 0.0)))
        mu_p = float(weight @ mu)
        var_p = z * vol_p - mu_p
        es_p = vol_p * NormalDist().pdf(z) / (1.0 - confidence) - mu_p
        with np.errstate(invalid="ignore", divide="ignore"):
            contribution = weight * (z * sigma_w / vol_p - mu) if vol_p > 0 else -weight * mu

    per_symbol = pd.DataFrame({
        "symbol": symbols, "weight": weight, "predicted_volatility": np.asarray(pred_vol, float),
        "vol_source": source, "risk_contribution": contribution,
    })
    portfolio = {
        "timestamp": str(day.date()) if day == day.normalize() else day.isoformat(),
        "n_positions": int(np.count_nonzero(position)),
        "gross_exposure": float(np.abs(weight).sum()), "net_exposure": float(weight.sum()),
        "long_exposure": float(weight[weight > 0].sum()), "short_exposure": float(np.abs(weight[weight < 0]).sum()),
        "history_days": int(L), "confidence": float(confidence),
        "var_historical": var_h, "es_historical": es_h,
        "var_parametric": var_p, "es_parametric": es_p, "volatility": vol_p,
    }
    return {"per_symbol": per_symbol, "portfolio": portfolio}
