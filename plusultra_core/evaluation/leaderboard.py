"""The walk-forward leaderboard: every fold's out-of-sample days chained into one track record.

Folds are sorted by start and must not overlap (decision periods, and hence realisation dates),
must compare the same strategies and must use the same cost. Each strategy's record is the
concatenation of its folds' daily net returns; its metrics are computed on that whole record
(`scoring.strategy_metrics`, so they equal metrics on the concatenated series) plus:

- ``probabilistic_sharpe_ratio``: P(true Sharpe > 0) given the record's length, skew and kurtosis;
- ``deflated_sharpe_ratio``: PSR against the Sharpe expected from the best of ``n_trials`` useless
  strategies. ``n_trials`` defaults to the number of strategies on the board, and the variance
  of their per-period Sharpe ratios is the trial variance (Bailey & Lopez de Prado 2014; with
  fewer than 2 finite Sharpe ratios, each strategy's own estimation variance is used). This is
  a *lower bound* on the selection bias: every configuration tried during research is a trial
  too, so pass the real count as ``n_trials`` when it is known.

The table is sorted by Sharpe ratio, best first (NaN last).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core import metrics as M
from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation._format import SHORT_NAMES, format_value
from plusultra_core.evaluation.fold import FoldResult
from plusultra_core.evaluation.scoring import strategy_metrics

__all__ = ["Leaderboard", "build_leaderboard", "TEXT_COLUMNS"]

LEADERBOARD = "leaderboard"
# Columns shown by `Leaderboard.to_text` (the table itself keeps every metric).
TEXT_COLUMNS = ["sharpe_ratio", "annual_return", "annual_volatility", "max_drawdown", "calmar_ratio",
                "sortino_ratio", "turnover", "hit_rate", "information_coefficient",
                "probabilistic_sharpe_ratio", "deflated_sharpe_ratio", "n_periods"]


@dataclass
class Leaderboard:
    """Strategies ranked on their chained out-of-sample record.

    table:     DataFrame strategy x metric, sorted by ``sharpe_ratio`` (best first).
    daily:     DataFrame date x strategy: the chained daily net returns.
    positions: the chained long book (as `FoldResult.positions`).
    folds:     DataFrame, one row per fold: start, end, n_days, model_name.
    cost_bps, n_trials: the cost every fold used and the DSR's trial count.
    """

    table: pd.DataFrame
    daily: pd.DataFrame
    positions: pd.DataFrame
    folds: pd.DataFrame
    cost_bps: float
    n_trials: int

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(first fold start, last fold end)``."""
        return pd.Timestamp(self.folds["start"].iloc[0]), pd.Timestamp(self.folds["end"].iloc[-1])

    def to_text(self, columns: Sequence[str] = TEXT_COLUMNS, width: int = 160) -> str:
        """An aligned terminal table (rich when installed, plain text otherwise)."""
        columns = [c for c in columns if c in self.table.columns]
        cells = [[name, *(format_value(self.table.at[name, c], c) for c in columns)] for name in self.table.index]
        header = ["strategy", *(SHORT_NAMES.get(c, c) for c in columns)]
        title = (f"Out-of-sample leaderboard {self.period[0].date()} .. {self.period[1].date()} "
                 f"({len(self.folds)} folds, cost {self.cost_bps:g} bps, DSR trials {self.n_trials})")
        try:
            from io import StringIO

            from rich.console import Console
            from rich.table import Table
        except ImportError:  # rich is a dependency, but the plain table keeps notebooks working without it
            return _plain_table(title, header, cells)
        table = Table(title=title)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in cells:
            table.add_row(*row)
        buffer = StringIO()
        Console(file=buffer, width=width, force_terminal=False, color_system=None).print(table)
        return buffer.getvalue()


def _plain_table(title: str, header: list[str], cells: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    def line(row):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
    return "\n".join([title, line(header), "  ".join("-" * w for w in widths), *map(line, cells)]) + "\n"


def _check_folds(folds: Sequence[FoldResult]) -> list[FoldResult]:
    if not folds:
        raise ConfigError("build_leaderboard: no folds given")
    folds = sorted(folds, key=lambda f: f.period[0])
    first = folds[0]
    for prev, cur in zip(folds, folds[1:]):
        if cur.period[0] < prev.period[1]:
            raise DataValidationError(
                f"{LEADERBOARD}: folds overlap: [{prev.period[0].date()}, {prev.period[1].date()}) and "
                f"[{cur.period[0].date()}, {cur.period[1].date()})",
                table=LEADERBOARD, column="period", check="folds_disjoint")
    for fold in folds[1:]:
        if fold.strategies != first.strategies:
            raise DataValidationError(
                f"{LEADERBOARD}: fold starting {fold.period[0].date()} compares {fold.strategies}, "
                f"the first fold {first.strategies}; every fold must compare the same strategies",
                table=LEADERBOARD, column="strategy", check="same_strategies")
        if fold.cost_bps != first.cost_bps:
            raise DataValidationError(
                f"{LEADERBOARD}: fold starting {fold.period[0].date()} used cost {fold.cost_bps} bps, "
                f"the first fold {first.cost_bps} bps", table=LEADERBOARD, column="cost_bps",
                check="same_cost")
    return folds


def build_leaderboard(folds: Sequence[FoldResult], n_trials: int | None = None,
                      periods_per_year: int = 252) -> Leaderboard:
    """Chain the folds' daily returns per strategy and rank the strategies (module docstring).

    Raises:
        DataValidationError: overlapping folds, differing strategies or costs, repeated dates.
        ConfigError: no folds, ``n_trials < 1``.
    """
    folds = _check_folds(folds)
    daily = pd.concat([f.daily for f in folds])
    if not daily.index.is_monotonic_increasing or daily.index.has_duplicates:
        raise DataValidationError(f"{LEADERBOARD}: the folds' daily returns share or interleave dates",
                                  table=LEADERBOARD, column="date", check="dates_increasing")
    positions = pd.concat([f.positions for f in folds], ignore_index=True)
    table = strategy_metrics(daily, positions, periods_per_year)

    n_trials = len(daily.columns) if n_trials is None else n_trials
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise ConfigError(f"build_leaderboard: n_trials must be an integer >= 1, got {n_trials!r}")
    # Per-period (not annualised) Sharpe of every strategy: the DSR's trial distribution.
    per_period = np.array([M.sharpe_ratio(daily[c].to_numpy(), periods_per_year=1) for c in daily.columns])
    finite = per_period[np.isfinite(per_period)]
    variance = float(finite.var(ddof=1)) if finite.size >= 2 else None
    table["deflated_sharpe_ratio"] = [
        M.deflated_sharpe_ratio(daily[c].to_numpy(), n_trials=int(n_trials), sharpe_variance=variance)
        for c in daily.columns]
    table["n_folds"] = float(len(folds))
    table = table.sort_values("sharpe_ratio", ascending=False, na_position="last", kind="stable")

    fold_rows = pd.DataFrame({
        "start": [f.period[0] for f in folds], "end": [f.period[1] for f in folds],
        "n_days": [len(f.daily) for f in folds], "model_name": [f.model_name for f in folds]})
    return Leaderboard(table=table, daily=daily, positions=positions, folds=fold_rows,
                       cost_bps=folds[0].cost_bps, n_trials=int(n_trials))
