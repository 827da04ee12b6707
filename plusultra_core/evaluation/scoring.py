"""Metrics of strategies from their daily portfolio returns and their per-symbol positions.

Shared by a single fold and by the leaderboard, so the same numbers come out of both and out of a
round trip through saved files. Conventions (``plusultra_core.metrics`` is empyrical-compatible):

- return metrics (Sharpe, Sortino, drawdown, Calmar, PSR...) use the daily equal-weight portfolio
  net return series (a day with no active symbol is a 0 return: the book is in cash);
- ``total_return`` is the compounded return of that series over the whole period;
- ``turnover`` is the mean over days of the day's mean ``|position change|`` across the active
  symbols -- the portfolio's one-way turnover, so ``cost drag per day = cost * turnover``;
- ``hit_rate`` compares the *sign of the position* with the realised next-bar return, pooled over
  all active symbol-days (flat positions and zero returns are no call);
- ``information_coefficient`` / ``rank_information_coefficient`` are Pearson / Spearman
  correlations of ``expected_return`` with the realised next-bar return, pooled over symbol-days
  (pooled rather than the mean of daily cross-sections, which is undefined for 1-2 symbols);
- ``bias_return`` / ``timing_return`` / ``cost_drag`` split the PnL: with ``p̄_s`` the strategy's
  mean position in symbol ``s`` over its book (every active symbol-day of the record), a row's
  gross PnL ``p * r`` is bias ``p̄_s * r`` (what a constant position per symbol would have made)
  plus timing ``(p - p̄_s) * r`` (what varying it added). Each is averaged over a day's active
  symbols (the equal-weight convention of `daily_returns`) and annualised arithmetically
  (mean daily value x ``periods_per_year``), so ``bias_return + timing_return - cost_drag`` is
  the mean daily net return x ``periods_per_year``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plusultra_core import metrics as M

__all__ = ["POSITION_COLUMNS", "METRIC_COLUMNS", "daily_returns", "daily_turnover", "pnl_split",
           "strategy_metrics"]

# Long per-symbol book: one row per strategy x active symbol-day.
POSITION_COLUMNS = ["date", "timestamp", "symbol", "strategy", "position", "change",
                    "expected_return", "realised_return", "realised_at", "cost", "pnl"]

METRIC_COLUMNS = ["total_return", "annual_return", "annual_volatility", "sharpe_ratio",
                  "sortino_ratio", "downside_risk", "max_drawdown", "calmar_ratio",
                  "probabilistic_sharpe_ratio", "turnover", "hit_rate", "information_coefficient",
                  "rank_information_coefficient", "bias_return", "timing_return", "cost_drag",
                  "n_periods"]


def _per_date_mean(positions: pd.DataFrame, column: str, dates: pd.DatetimeIndex,
                   strategies: list[str]) -> pd.DataFrame:
    """date x strategy mean of ``column`` over active rows (NaN values skipped); 0 on dates
    without any row. ``dates`` must be unique (realisation dates are)."""
    dates = pd.DatetimeIndex(dates, name="date")
    n_dates, n_strat = len(dates), len(strategies)
    d = dates.get_indexer(pd.DatetimeIndex(positions["date"])) if len(positions) else np.zeros(0, np.int64)
    s = pd.Index(strategies).get_indexer(positions["strategy"]) if len(positions) else np.zeros(0, np.int64)
    values = positions[column].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = (d >= 0) & (s >= 0) & ~np.isnan(values)
    cell = s[ok] * n_dates + d[ok]                                   # [R] strategy-major cells
    sums = np.bincount(cell, weights=values[ok], minlength=n_strat * n_dates)
    counts = np.bincount(cell, minlength=n_strat * n_dates)
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return pd.DataFrame(mean.reshape(n_strat, n_dates).T, index=dates,
                        columns=pd.Index(strategies, name="strategy"))


def daily_returns(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str]) -> pd.DataFrame:
    """Equal-weight portfolio net return per date: mean ``pnl`` over that date's active symbols."""
    return _per_date_mean(positions, "pnl", dates, strategies)


def daily_turnover(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str]) -> pd.DataFrame:
    """Portfolio turnover per date: mean ``|change|`` over that date's active symbols."""
    absolute = positions.assign(abs_change=positions["change"].abs())
    return _per_date_mean(absolute, "abs_change", dates, strategies)


def pnl_split(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str],
              periods_per_year: int = 252) -> pd.DataFrame:
    """strategy x [bias_return, timing_return, cost_drag], annualised (module docstring)."""
    r = np.nan_to_num(positions["realised_return"].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
    p = positions["position"].to_numpy(dtype=np.float64)
    p_bar = positions.groupby(["strategy", "symbol"], sort=False)["position"].transform("mean").to_numpy()
    parts = positions[["date", "strategy", "cost"]].assign(bias=p_bar * r, timing=(p - p_bar) * r)
    return pd.DataFrame({
        name: _per_date_mean(parts, column, dates, strategies).mean(axis=0) * periods_per_year
        for name, column in (("bias_return", "bias"), ("timing_return", "timing"), ("cost_drag", "cost"))
    }).reindex(strategies)


def strategy_metrics(daily: pd.DataFrame, positions: pd.DataFrame,
                     periods_per_year: int = 252) -> pd.DataFrame:
    """strategy x metric table (``METRIC_COLUMNS``) from a date x strategy return frame and a book."""
    strategies = list(daily.columns)
    turn = daily_turnover(positions, daily.index, strategies)
    split = pnl_split(positions, daily.index, strategies, periods_per_year)
    rows = {}
    for name in strategies:  # a handful of strategies: the work inside is vectorised
        r = daily[name].to_numpy(dtype=np.float64)
        book = positions[positions["strategy"] == name]
        realised = book["realised_return"].to_numpy(dtype=np.float64)
        out = M.summary(r, periods_per_year=periods_per_year)
        out["total_return"] = float(np.prod(1.0 + np.nan_to_num(r)) - 1.0) if r.size else np.nan
        out["turnover"] = float(turn[name].mean()) if len(turn) else np.nan
        out["hit_rate"] = M.hit_rate(book["position"].to_numpy(dtype=np.float64), realised)
        expected = book["expected_return"].to_numpy(dtype=np.float64)
        out["information_coefficient"] = M.information_coefficient(expected, realised)
        out["rank_information_coefficient"] = M.rank_information_coefficient(expected, realised)
        out.update({k: float(v) for k, v in split.loc[name].items()})
        rows[name] = out
    table = pd.DataFrame.from_dict(rows, orient="index")
    extra = [c for c in table.columns if c not in METRIC_COLUMNS]
    table = table.reindex(columns=METRIC_COLUMNS + extra)
    table.index.name = "strategy"
    return table
