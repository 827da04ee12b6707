"""Trading metrics of a prediction stream: per-symbol PnL in time order, net of costs.

Dimension legend: ``N`` samples (windows), each with its first-step position, expected return,
realised first-step return, symbol group and first-target timestamp.

The PnL of a symbol is ``pos_t * r_t - cost * |pos_t - pos_{t-1}|`` along its own time axis
(the first position is charged from flat), the portfolio return at a timestamp is the
equal-weight mean over the symbols present, and the standard metrics (`plusultra_core.metrics`)
are computed on that portfolio series. Fully vectorised: one lexsort, one ``np.unique``.
Assumes consecutive samples of a symbol are one bar apart (dataset stride 1), which is how the
validation/test loaders are built.
"""

from __future__ import annotations

import numpy as np

from plusultra_core import metrics


def net_pnl(position: np.ndarray, realised: np.ndarray, group: np.ndarray, time: np.ndarray,
            cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pnl [N], time [N], turnover [N])`` sorted by (group, time); cost charged on |Δposition|."""
    order = np.lexsort((time, group))
    pos, ret, grp, tim = position[order], realised[order], group[order], time[order]
    prev = np.empty_like(pos)
    prev[0:1] = 0.0
    prev[1:] = pos[:-1]
    prev[np.r_[True, grp[1:] != grp[:-1]]] = 0.0      # each symbol starts flat
    trade = np.abs(pos - prev)
    return pos * ret - cost * trade, tim, trade


def portfolio_series(pnl: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Equal-weight mean of per-symbol pnl at each timestamp, in time order ``[n_times]``."""
    _, inverse = np.unique(time, return_inverse=True)
    sums = np.bincount(inverse, weights=pnl)
    counts = np.bincount(inverse)
    return sums / counts


def stream_metrics(position, expected, realised, group, time, *, cost_bps: float) -> dict[str, float]:
    """Validation/test metrics of one prediction stream (all inputs 1-D, length N).

    Keys: ``sharpe``, ``max_drawdown``, ``annual_return``, ``turnover``, ``hit_rate``, ``ic``,
    ``rank_ic``, ``mean_pnl``, ``n_periods`` and the always-long baseline ``long_sharpe`` on the
    same samples (same costs), so a reader sees at once whether the model beats holding.
    """
    position = np.asarray(position, dtype=np.float64)
    realised = np.asarray(realised, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    group = np.asarray(group)
    time = np.asarray(time)
    if position.size == 0:
        return {}
    cost = cost_bps * 1e-4
    pnl, tim, trade = net_pnl(position, realised, group, time, cost)
    port = portfolio_series(pnl, tim)
    long_pnl, long_tim, _ = net_pnl(np.ones_like(position), realised, group, time, cost)
    long_port = portfolio_series(long_pnl, long_tim)
    return {
        "sharpe": metrics.sharpe_ratio(port),
        "max_drawdown": metrics.max_drawdown(port),
        "annual_return": metrics.annual_return(port),
        "turnover": float(trade.mean()),
        "hit_rate": metrics.hit_rate(position, realised),
        "ic": metrics.information_coefficient(expected, realised),
        "rank_ic": metrics.rank_information_coefficient(expected, realised),
        "mean_pnl": float(pnl.mean()),
        "n_periods": float(port.size),
        "long_sharpe": metrics.sharpe_ratio(long_port),
    }
