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

__all__ = ["POSITION_COLUMNS", "METRIC_COLUMNS", "date_means", "grid_cells", "daily_returns", "daily_turnover",
           "pnl_split", "strategy_metrics"]

# Long per-symbol book: one row per strategy x active symbol-day.
POSITION_COLUMNS = ["date", "timestamp", "symbol", "strategy", "position", "change",
                    "expected_return", "realised_return", "realised_at", "cost", "pnl"]

METRIC_COLUMNS = ["total_return", "annual_return", "annual_volatility", "sharpe_ratio",
                  "sortino_ratio", "downside_risk", "max_drawdown", "calmar_ratio",
                  "probabilistic_sharpe_ratio", "turnover", "hit_rate", "information_coefficient",
                  "rank_information_coefficient", "bias_return", "timing_return", "cost_drag",
                  "n_periods"]


def grid_cells(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str]) -> np.ndarray:
    """[R] strategy-major cell ``s * n_dates + d`` of each book row; -1 when its date or strategy
    is not on the grid. Codes via factorize / searchsorted: no per-row hashing of strings."""
    n_dates = len(dates)
    if not len(positions):
        return np.zeros(0, dtype=np.int64)
    codes, names = pd.factorize(positions["strategy"])
    s = pd.Index(strategies).get_indexer(pd.Index(names))[codes]     # [R] few distinct names
    grid = np.asarray(dates, dtype="datetime64[ns]")
    row_dates = positions["date"].to_numpy(dtype="datetime64[ns]")
    if n_dates and (n_dates == 1 or (np.diff(grid) > np.timedelta64(0)).all()):
        d = np.minimum(np.searchsorted(grid, row_dates), n_dates - 1)
        d = np.where(grid[d] == row_dates, d, -1)
    else:
        d = pd.DatetimeIndex(grid).get_indexer(pd.DatetimeIndex(row_dates))
    return np.where((s >= 0) & (d >= 0), s * n_dates + d, -1)


def date_means(positions: pd.DataFrame, values: dict[str, np.ndarray], dates: pd.DatetimeIndex,
               strategies: list[str], cells: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """For each ``name: [R] values`` aligned with the book rows: the date x strategy mean over
    active rows (NaN values skipped), 0 on dates without any row. ``dates`` must be unique
    (realisation dates are); ``cells`` = `grid_cells` of the same arguments, when already known."""
    dates = pd.DatetimeIndex(dates, name="date")
    n_cells = len(strategies) * len(dates)
    cells = grid_cells(positions, dates, strategies) if cells is None else cells
    out = {}
    for name, v in values.items():  # a few value columns
        v = np.asarray(v, dtype=np.float64)
        ok = (cells >= 0) & ~np.isnan(v)
        sums = np.bincount(cells[ok], weights=v[ok], minlength=n_cells)
        counts = np.bincount(cells[ok], minlength=n_cells)
        mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        out[name] = pd.DataFrame(mean.reshape(len(strategies), len(dates)).T, index=dates,
                                 columns=pd.Index(strategies, name="strategy"))
    return out


def _per_date_mean(positions: pd.DataFrame, column: str, dates: pd.DatetimeIndex,
                   strategies: list[str]) -> pd.DataFrame:
    """date x strategy mean of ``column`` over active rows (`date_means`)."""
    values = positions[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return date_means(positions, {column: values}, dates, strategies)[column]


def daily_returns(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str]) -> pd.DataFrame:
    """Equal-weight portfolio net return per date: mean ``pnl`` over that date's active symbols."""
    return _per_date_mean(positions, "pnl", dates, strategies)


def daily_turnover(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str],
                   cells: np.ndarray | None = None) -> pd.DataFrame:
    """Portfolio turnover per date: mean ``|change|`` over that date's active symbols."""
    change = np.abs(positions["change"].to_numpy(dtype=np.float64, na_value=np.nan))
    return date_means(positions, {"abs_change": change}, dates, strategies, cells)["abs_change"]


def pnl_split(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str],
              periods_per_year: int = 252, cells: np.ndarray | None = None) -> pd.DataFrame:
    """strategy x [bias_return, timing_return, cost_drag], annualised (module docstring)."""
    r = np.nan_to_num(positions["realised_return"].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
    p = positions["position"].to_numpy(dtype=np.float64)
    p_bar = positions.groupby(["strategy", "symbol"], sort=False)["position"].transform("mean").to_numpy()
    means = date_means(positions, {"bias_return": p_bar * r, "timing_return": (p - p_bar) * r,
                                   "cost_drag": positions["cost"].to_numpy(dtype=np.float64)},
                       dates, strategies, cells)
    return pd.DataFrame({name: m.mean(axis=0) * periods_per_year for name, m in means.items()}
                        ).reindex(strategies)


def strategy_metrics(daily: pd.DataFrame, positions: pd.DataFrame,
                     periods_per_year: int = 252) -> pd.DataFrame:
    """strategy x metric table (``METRIC_COLUMNS``) from a date x strategy return frame and a book."""
    strategies = list(daily.columns)
    cells = grid_cells(positions, daily.index, strategies)
    turn = daily_turnover(positions, daily.index, strategies, cells)
    split = pnl_split(positions, daily.index, strategies, periods_per_year, cells)
    codes, names = pd.factorize(positions["strategy"])
    code_of = dict(zip(names, range(len(names))))
    position = positions["position"].to_numpy(dtype=np.float64)
    realised_all = positions["realised_return"].to_numpy(dtype=np.float64, na_value=np.nan)
    expected_all = positions["expected_return"].to_numpy(dtype=np.float64, na_value=np.nan)
    rows = {}
    for name in strategies:  # a handful of strategies: the work inside is vectorised
        r = daily[name].to_numpy(dtype=np.float64)
        mine = codes == code_of.get(name, -2)
        realised = realised_all[mine]
        out = M.summary(r, periods_per_year=periods_per_year)
        out["total_return"] = float(np.prod(1.0 + np.nan_to_num(r)) - 1.0) if r.size else np.nan
        out["turnover"] = float(turn[name].mean()) if len(turn) else np.nan
        out["hit_rate"] = M.hit_rate(position[mine], realised)
        expected = expected_all[mine]
        out["information_coefficient"] = M.information_coefficient(expected, realised)
        out["rank_information_coefficient"] = M.rank_information_coefficient(expected, realised)
        out.update({k: float(v) for k, v in split.loc[name].items()})
        rows[name] = out
    table = pd.DataFrame.from_dict(rows, orient="index")
    extra = [c for c in table.columns if c not in METRIC_COLUMNS]
    table = table.reindex(columns=METRIC_COLUMNS + extra)
    table.index.name = "strategy"
    return table
