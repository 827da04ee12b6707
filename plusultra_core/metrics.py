"""Performance metrics for return streams, positions and signals (numpy in, floats out).

Definitions follow empyrical / pyfolio so numbers agree with what quant researchers already
use: simple per-period returns, ``periods_per_year=252``, risk-free 0 by default, sample standard
deviation (``ddof=1``), compounded wealth starting at 1.0, and NaNs ignored the way empyrical
ignores them (``nanmean`` / ``nanstd`` for moments, a NaN return counts as a flat period in the
wealth path). Edge cases also follow empyrical instead of raising:

- fewer than 2 observations -> NaN for Sharpe, Sortino, volatility; empty -> NaN everywhere;
- zero standard deviation -> the plain IEEE quotient (``+-inf``, or NaN for 0/0), as empyrical;
- no drawdown at all -> ``max_drawdown`` is 0.0 and ``calmar_ratio`` is NaN.

The signal metrics (hit rate, IC, rank IC) and the Sharpe-inference statistics (probabilistic and
deflated Sharpe, Bailey & Lopez de Prado 2012 / 2014) are documented on each function.
"""

from __future__ import annotations

import math

import numpy as np

# Euler-Mascheroni constant, used by the expected maximum of N Gaussian Sharpe ratios (DSR).
EULER_GAMMA = 0.5772156649015329

__all__ = [
    "annual_return", "annual_volatility", "sharpe_ratio", "downside_risk", "sortino_ratio",
    "max_drawdown", "calmar_ratio", "turnover", "hit_rate", "information_coefficient",
    "rank_information_coefficient", "probabilistic_sharpe_ratio", "deflated_sharpe_ratio",
    "expected_max_sharpe", "summary",
]


def _scipy_stats():
    """``scipy.stats``, imported on first use: it costs 1-2 s, and importing the metrics (as the
    pipeline's code versions do) should not."""
    from scipy import stats

    return stats


def _as_1d(values, name: str) -> np.ndarray:
    """Float64 1-D view of ``values``; anything else is a caller bug, so say which argument."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of per-period values, got shape {arr.shape}")
    return arr


def _ratio(num: float, den: float) -> float:
    """IEEE division without warnings: x/0 -> +-inf, 0/0 -> NaN (what empyrical returns)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(np.float64(num), np.float64(den)))


def _nan_moments(arr: np.ndarray) -> tuple[float, float]:
    """(nanmean, nanstd ddof=1) without RuntimeWarnings; NaN when fewer than 2 finite values."""
    finite = arr[~np.isnan(arr)]
    if finite.size < 2:
        return (float(finite.mean()) if finite.size else math.nan), math.nan
    return float(finite.mean()), float(finite.std(ddof=1))


def annual_return(returns, periods_per_year: int = 252) -> float:
    """Compound annual growth rate: ``prod(1 + r) ** (ppy / N) - 1``.

    ``N`` counts every period including NaN ones (a NaN return is a flat period), like empyrical.
    Empty input -> NaN.
    """
    r = _as_1d(returns, "returns")
    if r.size == 0:
        return math.nan
    ending = float(np.nanprod(1.0 + r))
    years = r.size / periods_per_year
    with np.errstate(invalid="ignore"):
        return float(np.power(ending, 1.0 / years) - 1.0)


def annual_volatility(returns, periods_per_year: int = 252) -> float:
    """Annualised sample standard deviation: ``nanstd(r, ddof=1) * sqrt(ppy)``; NaN if N < 2."""
    r = _as_1d(returns, "returns")
    if r.size < 2:
        return math.nan
    return _nan_moments(r)[1] * math.sqrt(periods_per_year)


def sharpe_ratio(returns, risk_free: float = 0.0, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``.

    ``risk_free`` is a per-period rate (as in empyrical). NaN if N < 2; zero volatility gives the
    IEEE quotient (inf or NaN).
    """
    r = _as_1d(returns, "returns") - risk_free
    if r.size < 2:
        return math.nan
    mean, std = _nan_moments(r)
    return _ratio(mean, std) * math.sqrt(periods_per_year)


def downside_risk(returns, required_return: float = 0.0, periods_per_year: int = 252) -> float:
    """Annualised downside deviation ``sqrt(mean(min(r - req, 0)^2)) * sqrt(ppy)``.

    The mean runs over *all* non-NaN periods (not only the losing ones), as empyrical and
    Sortino & Price define it. Empty -> NaN.
    """
    r = _as_1d(returns, "returns")
    if r.size == 0:
        return math.nan
    diff = np.minimum(r - required_return, 0.0)  # NaN stays NaN and is skipped below
    finite = diff[~np.isnan(diff)]
    if finite.size == 0:
        return math.nan
    return math.sqrt(float(np.mean(finite * finite))) * math.sqrt(periods_per_year)


def sortino_ratio(returns, required_return: float = 0.0, periods_per_year: int = 252) -> float:
    """Sortino ratio: annualised mean excess return / annualised downside deviation.

    NaN if N < 2; no losing period gives +inf (IEEE quotient), as empyrical.
    """
    r = _as_1d(returns, "returns")
    if r.size < 2:
        return math.nan
    mean = _nan_moments(r - required_return)[0]
    return _ratio(mean * periods_per_year, downside_risk(r, required_return, periods_per_year))


def max_drawdown(returns) -> float:
    """Largest peak-to-trough loss of compounded wealth starting at 1.0, as a negative fraction.

    The starting wealth counts as a peak, so a first-period loss is a drawdown; NaN returns are
    flat periods. 0.0 when wealth never falls; NaN for empty input.
    """
    r = _as_1d(returns, "returns")
    if r.size == 0:
        return math.nan
    # [N] -> [N+1] wealth path, leading 1.0 is the starting capital.
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + np.nan_to_num(r, nan=0.0))))
    peak = np.fmax.accumulate(wealth)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nanmin((wealth - peak) / peak))


def calmar_ratio(returns, periods_per_year: int = 252) -> float:
    """CAGR / |max drawdown|; NaN when there is no drawdown or the ratio is infinite."""
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return math.nan
    value = annual_return(returns, periods_per_year) / abs(mdd)
    return math.nan if math.isinf(value) else float(value)


def turnover(positions) -> float:
    """Mean absolute position change per period, ``mean_t |p_t - p_{t-1}|`` with ``p_{-1} = 0``.

    The first period counts the entry from flat (so a constant position of 1 held for N periods
    has turnover 1/N). A NaN position means "no position" (flat). For a ``[T, N]`` array of
    per-asset positions, changes are summed across assets per period (gross portfolio turnover)
    before averaging over time. Empty -> NaN.
    """
    pos = np.nan_to_num(np.asarray(positions, dtype=np.float64), nan=0.0)
    if pos.ndim == 0:
        pos = pos.reshape(1)
    if pos.ndim not in (1, 2):
        raise ValueError(f"positions: expected shape [T] or [T, N], got {pos.shape}")
    if pos.shape[0] == 0:
        return math.nan
    # [T(, N)] -> [T(, N)] changes, the first one measured from a flat book.
    changes = np.abs(np.diff(pos, axis=0, prepend=np.zeros_like(pos[:1])))
    per_period = changes.sum(axis=1) if changes.ndim == 2 else changes
    return float(per_period.mean())


def _paired(pred, realised) -> tuple[np.ndarray, np.ndarray]:
    """Drop pairs where either side is NaN; shapes must match."""
    p, r = _as_1d(pred, "pred"), _as_1d(realised, "realised")
    if p.shape != r.shape:
        raise ValueError(f"pred and realised must have the same length, got {p.size} and {r.size}")
    keep = ~(np.isnan(p) | np.isnan(r))
    return p[keep], r[keep]


def hit_rate(pred, realised) -> float:
    """Fraction of periods where the prediction and the realised return have the same sign.

    Pairs where either side is NaN or exactly zero are ignored (a zero prediction is "no call",
    a zero return is no outcome). NaN when nothing remains.
    """
    p, r = _paired(pred, realised)
    keep = (p != 0) & (r != 0)
    if not keep.any():
        return math.nan
    return float(np.mean(np.sign(p[keep]) == np.sign(r[keep])))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    return math.nan if den == 0 else float(np.dot(xc, yc) / den)


def information_coefficient(pred, realised) -> float:
    """Pearson correlation of predictions and realised returns over non-NaN pairs.

    NaN with fewer than 2 pairs or when either side is constant.
    """
    return _pearson(*_paired(pred, realised))


def rank_information_coefficient(pred, realised) -> float:
    """Spearman correlation: Pearson on average ranks (``scipy.stats.rankdata``), non-NaN pairs."""
    p, r = _paired(pred, realised)
    if p.size < 2:
        return math.nan
    return _pearson(_scipy_stats().rankdata(p), _scipy_stats().rankdata(r))


def _sharpe_stats(returns) -> tuple[float, int, float, float]:
    """Per-period Sharpe (ddof=1), sample size, skewness and (Pearson, non-excess) kurtosis."""
    r = _as_1d(returns, "returns")
    r = r[~np.isnan(r)]
    n = r.size
    if n < 2:
        return math.nan, n, math.nan, math.nan
    mean, std = float(r.mean()), float(r.std(ddof=1))
    if std == 0:
        return _ratio(mean, std), n, math.nan, math.nan
    # Biased moment estimators, as in Bailey & Lopez de Prado's worked examples.
    skew = float(_scipy_stats().skew(r, bias=True))
    kurt = float(_scipy_stats().kurtosis(r, fisher=False, bias=True))
    return mean / std, n, skew, kurt


def probabilistic_sharpe_ratio(returns, benchmark_sharpe: float = 0.0) -> float:
    """Probability that the true Sharpe exceeds ``benchmark_sharpe`` (Bailey & Lopez de Prado 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2))`` with the
    per-period (not annualised) Sharpe ``SR`` (sample std, ddof=1), skewness ``g3`` and Pearson
    kurtosis ``g4`` (3 for a Gaussian) of the non-NaN returns; ``benchmark_sharpe`` is per-period
    too. NaN with fewer than 3 observations or zero volatility.
    """
    sr, n, skew, kurt = _sharpe_stats(returns)
    if n < 3 or not math.isfinite(sr) or math.isnan(skew):
        return math.nan
    var_term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var_term <= 0:
        return math.nan
    z = (sr - benchmark_sharpe) * math.sqrt(n - 1) / math.sqrt(var_term)
    return float(_scipy_stats().norm.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates under the null of zero true Sharpe.

    ``sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))`` (Bailey & Lopez
    de Prado 2014, False Strategy theorem); 0 for a single trial.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sharpe_variance < 0 or not math.isfinite(sharpe_variance):
        raise ValueError(f"sharpe_variance must be a finite non-negative number, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * _scipy_stats().norm.ppf(1.0 - 1.0 / n_trials) \
        + EULER_GAMMA * _scipy_stats().norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sharpe_variance) * quantiles)


def deflated_sharpe_ratio(returns, n_trials: int, sharpe_variance: float | None = None,
                          trial_sharpes=None) -> float:
    """PSR against the Sharpe one would expect from the best of ``n_trials`` useless strategies.

    Bailey & Lopez de Prado (2014): ``DSR = PSR(SR0)`` with ``SR0 = expected_max_sharpe(N, V)``.
    ``V`` (variance of the per-period Sharpe ratios across trials) comes from ``sharpe_variance``,
    else from the sample variance (ddof=1) of ``trial_sharpes`` (per-period Sharpes of every
    trial), else -- when neither is known -- from the estimation variance of this strategy's own
    Sharpe, ``(1 - g3 SR + (g4 - 1)/4 SR^2) / (n - 1)``. More trials -> higher ``SR0`` -> lower DSR.
    """
    if sharpe_variance is not None and trial_sharpes is not None:
        raise ValueError("give sharpe_variance or trial_sharpes, not both")
    if trial_sharpes is not None:
        trials = _as_1d(trial_sharpes, "trial_sharpes")
        trials = trials[np.isfinite(trials)]
        if trials.size < 2:
            raise ValueError("trial_sharpes needs at least 2 finite values to estimate a variance")
        sharpe_variance = float(trials.var(ddof=1))
    if sharpe_variance is None:
        sr, n, skew, kurt = _sharpe_stats(returns)
        if n < 3 or not math.isfinite(sr) or math.isnan(skew):
            return math.nan
        sharpe_variance = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, 0.0) / (n - 1)
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(n_trials, sharpe_variance))


def summary(returns, positions=None, pred=None, realised=None,
            periods_per_year: int = 252) -> dict[str, float]:
    """All headline metrics in one flat dict (stable keys, for reports and Dagster metadata).

    Always: ``n_periods, annual_return, annual_volatility, sharpe_ratio, sortino_ratio,
    downside_risk, max_drawdown, calmar_ratio, probabilistic_sharpe_ratio``; plus ``turnover``
    when ``positions`` is given and ``hit_rate, information_coefficient,
    rank_information_coefficient`` when both ``pred`` and ``realised`` are given.
    """
    r = _as_1d(returns, "returns")
    out = {
        "n_periods": float(r.size),
        "annual_return": annual_return(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe_ratio": sharpe_ratio(r, periods_per_year=periods_per_year),
        "sortino_ratio": sortino_ratio(r, periods_per_year=periods_per_year),
        "downside_risk": downside_risk(r, periods_per_year=periods_per_year),
        "max_drawdown": max_drawdown(r),
        "calmar_ratio": calmar_ratio(r, periods_per_year),
        "probabilistic_sharpe_ratio": probabilistic_sharpe_ratio(r),
    }
    if positions is not None:
        out["turnover"] = turnover(positions)
    if (pred is None) != (realised is None):
        raise ValueError("pred and realised must be given together")
    if pred is not None:
        out["hit_rate"] = hit_rate(pred, realised)
        out["information_coefficient"] = information_coefficient(pred, realised)
        out["rank_information_coefficient"] = rank_information_coefficient(pred, realised)
    return out
