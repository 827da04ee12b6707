"""Causal baselines evaluated beside every model: buy-and-hold, a momentum rule, a ridge model.

Each baseline returns a predictions-like frame ``[timestamp, symbol, position, expected_return]``
for the window-frame rows decided inside ``[start, end)``, with the same convention as a model's
predictions: a position decided at the close of ``t`` is held over the next bar. Every position at
``t`` uses data at ``<= t`` only (a truncation test proves it), and all three are vectorised over
symbols and days (per-symbol arithmetic is done with group offsets, not Python loops).

- ``buy_and_hold``: long 1.0 every day; no forecast (``expected_return`` NaN).
- ``momentum_rule``: sign of the trailing ``lookback``-bar compounded return, computed from
  ``ret_1d`` so it does not depend on which features were selected; forecast = the trailing
  geometric-mean daily return.
- ``linear_model``: ridge regression of the next bar's return on the features at ``t``, fitted
  only on pairs whose target bar is before ``train_end`` minus ``purge`` bars of each symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation._frame import (RETURN_COLUMN, check_period, in_period, next_bar,
                                              prepare_frame, to_timestamp, validity)

__all__ = ["BASELINES", "LinearFit", "buy_and_hold", "momentum_rule", "fit_linear", "linear_model",
           "apply_linear"]

OUTPUT_COLUMNS = ["timestamp", "symbol", "position", "expected_return"]


def _output(frame: pd.DataFrame, rows: np.ndarray, position: np.ndarray,
            expected: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame({
        "timestamp": frame["timestamp"].to_numpy()[rows],
        "symbol": frame["symbol"].to_numpy()[rows],
        "position": np.asarray(position, dtype=np.float64),
        "expected_return": np.asarray(expected, dtype=np.float64),
    })
    return out.reset_index(drop=True)


def buy_and_hold(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    """Long 1.0 on every row decided in ``[start, end)``; ``expected_return`` is NaN (no forecast)."""
    start, end = check_period(start, end)
    frame = prepare_frame(frame)
    rows = np.flatnonzero(in_period(frame, start, end))
    return _output(frame, rows, np.ones(rows.size), np.full(rows.size, np.nan))


def _group_position(frame: pd.DataFrame) -> np.ndarray:
    """[N] 0-based index of each row inside its symbol's block (frame is symbol-major)."""
    return frame.groupby("symbol", sort=False).cumcount().to_numpy()


def momentum_rule(frame: pd.DataFrame, start, end, lookback: int = 20) -> pd.DataFrame:
    """Sign of the trailing ``lookback``-bar compounded return (from ``ret_1d``), per symbol.

    ``trailing_t = prod(1 + ret_1d[t-lookback+1 .. t]) - 1`` over the symbol's own bars, a NaN
    return counting as a flat bar. Position ``sign(trailing_t)`` (0 when exactly flat); NaN when
    the symbol has fewer than ``lookback`` earlier bars (``t - lookback`` must exist, because the
    first bar's return is undefined). ``expected_return`` is the trailing geometric-mean daily
    return ``(1 + trailing_t) ** (1 / lookback) - 1``.
    """
    if not (isinstance(lookback, (int, np.integer)) and lookback >= 1):
        raise ConfigError(f"momentum_rule: lookback must be an integer >= 1, got {lookback!r}")
    start, end = check_period(start, end)
    frame = prepare_frame(frame)
    ret = frame[RETURN_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
    # Log wealth per symbol; clip keeps a (contract-violating) -100% bar finite.
    log_growth = np.log1p(np.maximum(np.nan_to_num(ret, nan=0.0), -1.0 + 1e-12))
    cum = pd.Series(log_growth).groupby(frame["symbol"].to_numpy(), sort=False).cumsum().to_numpy()
    k = _group_position(frame)
    rows = np.flatnonzero(in_period(frame, start, end))
    enough = k[rows] >= lookback
    trailing_log = np.full(rows.size, np.nan)
    # [R] sum of log growth over (t - lookback, t] of the same symbol: cum[t] - cum[t - lookback]
    back = rows[enough] - lookback
    trailing_log[enough] = cum[rows[enough]] - cum[back]
    position = np.sign(trailing_log)
    expected = np.expm1(trailing_log / lookback)
    return _output(frame, rows, position, expected)


@dataclass
class LinearFit:
    """A fitted ridge baseline.

    ``coef`` are per-feature slopes in *raw* feature units (the fit is on standardised features
    and mapped back), ``intercept`` in return units, ``scale`` the in-sample standard deviation
    of the fitted predictions (used by ``sizing="scaled"``), ``n_train`` the number of training
    pairs and ``last_target_time`` the latest target bar used (strictly before ``train_end``).
    """

    feature_names: list[str]
    coef: np.ndarray
    intercept: float
    scale: float
    n_train: int
    last_target_time: pd.Timestamp
    ridge: float
    details: dict = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``[R, F] -> [R]`` predicted next-bar return."""
        return np.einsum("rf,f->r", x, self.coef, optimize=False) + self.intercept


def _training_mask(frame: pd.DataFrame, ok: np.ndarray, target: np.ndarray,
                   target_at: np.ndarray, train_end: pd.Timestamp, purge: int) -> np.ndarray:
    """[N] rows usable for fitting: valid features, a finite target bar before ``train_end``,
    minus each symbol's last ``purge`` such rows (the same embargo the models get)."""
    candidate = ok & np.isfinite(target) & (target_at < train_end.to_datetime64())
    if purge > 0 and candidate.any():
        idx = np.flatnonzero(candidate)
        # rank from the end among each symbol's candidate rows: 0 = latest target
        from_end = (pd.Series(frame["symbol"].to_numpy()[idx])
                    .groupby(frame["symbol"].to_numpy()[idx], sort=False)
                    .cumcount(ascending=False).to_numpy())
        candidate[idx[from_end < purge]] = False
    return candidate


def fit_linear(frame: pd.DataFrame, feature_names: Sequence[str], train_end, purge: int,
               ridge: float = 1.0) -> LinearFit:
    """Ridge regression of the next bar's return on the features at ``t``.

    Training pairs: rows with valid, finite features whose target (the same symbol's next bar)
    is finite and dated strictly before ``train_end``, then each symbol's last ``purge`` pairs are
    dropped. So no target at or after ``train_end`` -- nor within ``purge`` bars before it -- is
    ever seen. Features are standardised with training moments; the objective is
    ``mean((y - a - Xb)^2) + ridge * |b|^2`` (intercept unpenalised), solved in closed form.

    Raises:
        DataValidationError: fewer than 2 training pairs, or missing columns.
        ConfigError: negative ``ridge`` or ``purge``, empty ``feature_names``.
    """
    feature_names = list(feature_names)
    if not feature_names:
        raise ConfigError("linear_model: feature_names is empty")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ConfigError(f"linear_model: ridge must be a finite number >= 0, got {ridge!r}")
    if not (isinstance(purge, (int, np.integer)) and purge >= 0):
        raise ConfigError(f"linear_model: purge must be an integer number of bars >= 0, got {purge!r}")
    train_end = to_timestamp(train_end, "train_end")
    frame = prepare_frame(frame, feature_names)
    target, target_at = next_bar(frame)
    ok = validity(frame, feature_names)
    train = _training_mask(frame, ok, target, target_at, train_end, int(purge))
    n = int(train.sum())
    if n < 2:
        raise DataValidationError(
            f"linear_model: only {n} training pairs with a target before train_end={train_end.date()} "
            f"minus purge={purge} bars; need at least 2", table="window_frame", column=RETURN_COLUMN,
            check="linear_training_rows")
    x = frame[feature_names].to_numpy(dtype=np.float64)[train]      # [n, F]
    y = target[train]                                                # [n]
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # a constant feature contributes nothing, not a division by 0
    z = (x - mu) / sd
    yc = y - y.mean()
    # einsum without BLAS: a fixed single-thread cost; threaded BLAS stalls badly on a busy
    # 2-core box (measured 0.3-9 s for this 500k x 22 product, einsum a steady 0.4 s).
    gram = np.einsum("nf,ng->fg", z, z, optimize=False) / n + ridge * np.eye(len(feature_names))  # [F, F]
    rhs = np.einsum("nf,n->f", z, yc, optimize=False) / n            # [F]
    beta_z = np.linalg.lstsq(gram, rhs, rcond=None)[0]               # lstsq: safe when ridge=0 and singular
    coef = beta_z / sd
    intercept = float(y.mean() - mu @ coef)
    fitted = np.einsum("nf,f->n", x, coef, optimize=False) + intercept
    return LinearFit(
        feature_names=feature_names, coef=coef, intercept=intercept,
        scale=float(fitted.std()), n_train=n,
        last_target_time=pd.Timestamp(target_at[train].max()), ridge=float(ridge),
        details={"train_end": str(train_end), "purge_bars": int(purge)},
    )


def linear_model(frame: pd.DataFrame, feature_names: Sequence[str], train_end, start, end,
                 purge: int, ridge: float = 1.0,
                 sizing: Literal["scaled", "sign"] = "scaled") -> pd.DataFrame:
    """Positions of a ridge model (see `fit_linear`) on rows decided in ``[start, end)``.

    ``sizing="scaled"``: ``position = clip(pred / scale, -1, 1)`` with ``scale`` the in-sample
    standard deviation of the fitted predictions (a one-sigma forecast is a full position, smaller
    forecasts trade smaller); ``sizing="sign"``: ``sign(pred)``. ``expected_return`` is ``pred``.
    Rows with invalid features get NaN (no position). ``train_end`` after ``start`` is an error:
    the model would have seen the period it is judged on.
    """
    start, end = check_period(start, end)
    if to_timestamp(train_end, "train_end") > start:
        raise ConfigError(f"linear_model: train_end {train_end} is after the evaluation start {start}")
    fit = fit_linear(frame, feature_names, train_end, purge, ridge)
    return apply_linear(frame, fit, start, end, sizing)


def apply_linear(frame: pd.DataFrame, fit: LinearFit, start, end,
                 sizing: Literal["scaled", "sign"] = "scaled") -> pd.DataFrame:
    """Predictions-like frame of an already fitted `LinearFit` on rows decided in ``[start, end)``."""
    if sizing not in ("scaled", "sign"):
        raise ConfigError(f"linear_model: sizing must be 'scaled' or 'sign', got {sizing!r}")
    start, end = check_period(start, end)
    frame = prepare_frame(frame, fit.feature_names)
    rows = np.flatnonzero(in_period(frame, start, end))
    ok = validity(frame, fit.feature_names)[rows]
    pred = np.full(rows.size, np.nan)
    pred[ok] = fit.predict(frame[fit.feature_names].to_numpy(dtype=np.float64)[rows[ok]])
    if sizing == "sign" or fit.scale == 0:
        position = np.sign(pred)  # a constant forecast has no scale: trade its sign
    else:
        position = np.clip(pred / fit.scale, -1.0, 1.0)
    return _output(frame, rows, position, pred)


BASELINES = {
    "buy_and_hold": "long 1.0 every day",
    "momentum": "sign of the trailing lookback-bar compounded return (ret_1d)",
    "linear": "ridge regression of next-bar return on the features, fitted before train_end - purge",
}
