"""The walk-forward leaderboard: every fold's decisions re-booked as one continuous record.

Folds are sorted by start and must tile the record: fold k's end is fold k+1's start (an
overlap or a gap is an error naming the dates); they must compare the same strategies, with the
same primary, at the same cost. The union of their decisions (`FoldResult.decisions`) is booked
once with `book.book_decisions` -- the same code a fold uses -- as ONE continuous book: flat only
before the first fold, no re-entry at a fold boundary for an unchanged position, a fold's last decision
earning the first bar after it, every (symbol, decision day) booked at most once. So the chained
record scores every decision day in ``[first start, last end)`` that has an outcome exactly once;
`Leaderboard.coverage` states what was scored per fold and in total, and why the rest was not.
``buy_and_hold@exposure`` holds the primary's average exposure over the whole chained record.

Metrics are computed on that record (`scoring.strategy_metrics`) plus:

- ``probabilistic_sharpe_ratio``: P(true Sharpe > 0) given the record's length, skew and kurtosis;
- ``deflated_sharpe_ratio``: PSR against the Sharpe expected from the best of ``n_trials`` useless
  strategies (Bailey & Lopez de Prado 2014). Pass the real trial count and the variance of the
  trials' per-period Sharpe ratios (every configuration evaluated in research is a trial) as
  ``n_trials`` / ``trial_sharpe_variance``. Without them the fallback is the board itself: N =
  the strategies compared (not the derived ``buy_and_hold@exposure``) and the variance of their
  per-period Sharpe ratios (with fewer than 2 finite, each strategy's own estimation variance)
  -- a *lower bound* on the selection bias. Both N and the variance used are recorded.
- ``cost_sensitivity``: the chained book re-priced at each cost of ``cost_grid`` (positions do
  not depend on the cost; `book.reprice`), strategy x cost.

The table is sorted by Sharpe ratio, best first (NaN last).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core import metrics as M
from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation._format import SHORT_NAMES, format_value
from plusultra_core.evaluation.book import (EXPOSURE_MATCHED, book_decisions, coverage_table,
                                            reprice, unpack_decisions)
from plusultra_core.evaluation.fold import FoldResult
from plusultra_core.evaluation.scoring import date_means, grid_cells, strategy_metrics

__all__ = ["Leaderboard", "build_leaderboard", "TEXT_COLUMNS", "DEFAULT_COST_GRID"]

DEFAULT_COST_GRID = (0.0, 5.0, 10.0, 20.0)
SENSITIVITY_COLUMNS = ["sharpe_ratio", "annual_return", "total_return", "max_drawdown", "cost_drag"]

LEADERBOARD = "leaderboard"
# Columns shown by `Leaderboard.to_text` (the table itself keeps every metric).
TEXT_COLUMNS = ["sharpe_ratio", "annual_return", "annual_volatility", "max_drawdown", "calmar_ratio",
                "sortino_ratio", "turnover", "hit_rate", "information_coefficient",
                "probabilistic_sharpe_ratio", "deflated_sharpe_ratio", "n_periods"]


@dataclass
class Leaderboard:
    """Strategies ranked on their chained, continuous out-of-sample record.

    table:     DataFrame strategy x metric, sorted by ``sharpe_ratio`` (best first).
    daily:     DataFrame date x strategy: the continuous book's daily net returns.
    positions: the continuous long book (`scoring.POSITION_COLUMNS`).
    folds:     DataFrame, one row per fold: start, end, n_days (booked decision days),
               model_name, exposure (the fold's own average exposure of the primary).
    cost_bps:  the cost every fold used.
    n_trials, trial_variance: the DSR's trial count and the variance of per-period trial
               Sharpe ratios it used (None: each strategy's own estimation variance);
               ``trial_variance_source`` says where the variance came from.
    decisions: the union of the folds' decisions (`book.DECISION_COLUMNS`).
    coverage:  DataFrame, one row per fold (index: start date) and ``"total"``
               (`book.COVERAGE_COLUMNS`).
    cost_sensitivity: DataFrame indexed by (strategy, cost_bps), columns ``SENSITIVITY_COLUMNS``.
    model_name, model_strategies, ensemble_name: the primary, the per-seed models, the ensemble.
    exposure:  the primary's mean net position over the chained record (the position of
               ``buy_and_hold@exposure``; None without buy-and-hold).
    """

    table: pd.DataFrame
    daily: pd.DataFrame
    positions: pd.DataFrame
    folds: pd.DataFrame
    cost_bps: float
    n_trials: int
    trial_variance: float | None = None
    trial_variance_source: str = ""
    decisions: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    cost_sensitivity: pd.DataFrame | None = None
    model_name: str = "model"
    model_strategies: list[str] = field(default_factory=list)
    ensemble_name: str | None = None
    exposure: float | None = None

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(first fold start, last fold end)``."""
        return pd.Timestamp(self.folds["start"].iloc[0]), pd.Timestamp(self.folds["end"].iloc[-1])

    def to_text(self, columns: Sequence[str] = TEXT_COLUMNS, width: int = 160) -> str:
        """An aligned terminal table (rich when installed, plain text otherwise)."""
        columns = [c for c in columns if c in self.table.columns]
        cells = [[name, *(format_value(self.table.at[name, c], c) for c in columns)] for name in self.table.index]
        header = ["strategy", *(SHORT_NAMES.get(c, c) for c in columns)]
        variance = "own" if self.trial_variance is None else f"{self.trial_variance:.3g}"
        title = (f"Out-of-sample leaderboard {self.period[0].date()} .. {self.period[1].date()} "
                 f"({len(self.folds)} folds, cost {self.cost_bps:g} bps, DSR trials {self.n_trials}, "
                 f"trial Sharpe variance {variance})")
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


def _fold_span(fold: FoldResult) -> str:
    return f"[{fold.period[0].date()}, {fold.period[1].date()})"


def _check_folds(folds: Sequence[FoldResult]) -> list[FoldResult]:
    if not folds:
        raise ConfigError("build_leaderboard: no folds given")
    folds = sorted(folds, key=lambda f: f.period[0])
    first = folds[0]
    for prev, cur in zip(folds, folds[1:]):
        if cur.period[0] < prev.period[1]:
            raise DataValidationError(
                f"{LEADERBOARD}: folds overlap: {_fold_span(prev)} and {_fold_span(cur)} both decide "
                f"[{cur.period[0].date()}, {min(prev.period[1], cur.period[1]).date()})",
                table=LEADERBOARD, column="period", check="folds_disjoint")
        if cur.period[0] > prev.period[1]:
            raise DataValidationError(
                f"{LEADERBOARD}: folds leave a gap: {_fold_span(prev)} ends {prev.period[1].date()} but the "
                f"next fold {_fold_span(cur)} starts {cur.period[0].date()}; no fold decides "
                f"[{prev.period[1].date()}, {cur.period[0].date()})",
                table=LEADERBOARD, column="period", check="folds_contiguous")
    for fold in folds:
        if fold.decisions is None:
            raise DataValidationError(
                f"{LEADERBOARD}: fold {_fold_span(fold)} has no decisions to re-book (re-evaluate it)",
                table=LEADERBOARD, column="decisions", check="decisions_present")
    for fold in folds[1:]:
        if fold.strategies != first.strategies:
            raise DataValidationError(
                f"{LEADERBOARD}: fold starting {fold.period[0].date()} compares {fold.strategies}, "
                f"the first fold {first.strategies}; every fold must compare the same strategies",
                table=LEADERBOARD, column="strategy", check="same_strategies")
        if fold.model_name != first.model_name:
            raise DataValidationError(
                f"{LEADERBOARD}: fold starting {fold.period[0].date()} has primary {fold.model_name!r}, "
                f"the first fold {first.model_name!r}", table=LEADERBOARD, column="model_name",
                check="same_primary")
        if fold.cost_bps != first.cost_bps:
            raise DataValidationError(
                f"{LEADERBOARD}: fold starting {fold.period[0].date()} used cost {fold.cost_bps} bps, "
                f"the first fold {first.cost_bps} bps", table=LEADERBOARD, column="cost_bps",
                check="same_cost")
    return folds


def _trials(daily: pd.DataFrame, n_trials, trial_sharpe_variance) -> tuple[int, float | None, str]:
    """The DSR's (N, variance of per-period trial Sharpe ratios, where the variance came from)."""
    trials = [c for c in daily.columns if c != EXPOSURE_MATCHED]    # a derived benchmark is no trial
    n_trials = len(trials) if n_trials is None else n_trials
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise ConfigError(f"build_leaderboard: n_trials must be an integer >= 1, got {n_trials!r}")
    if trial_sharpe_variance is not None:
        if not (isinstance(trial_sharpe_variance, (int, float, np.floating))
                and math.isfinite(trial_sharpe_variance) and trial_sharpe_variance >= 0):
            raise ConfigError("build_leaderboard: trial_sharpe_variance must be a finite number >= 0, "
                              f"got {trial_sharpe_variance!r}")
        return int(n_trials), float(trial_sharpe_variance), "given (every configuration evaluated)"
    # Per-period (not annualised) Sharpe of every strategy on the board: the fallback trial set.
    per_period = np.array([M.sharpe_ratio(daily[c].to_numpy(), periods_per_year=1) for c in trials])
    finite = per_period[np.isfinite(per_period)]
    if finite.size >= 2:
        return int(n_trials), float(finite.var(ddof=1)), "the strategies on this board (a lower bound)"
    return int(n_trials), None, "each strategy's own Sharpe estimation variance"


def _cost_sensitivity(positions: pd.DataFrame, dates: pd.DatetimeIndex, strategies: list[str],
                      costs: Sequence[float], periods_per_year: int) -> pd.DataFrame:
    """(strategy, cost_bps) x ``SENSITIVITY_COLUMNS`` of the book re-priced at each cost."""
    slim = positions[["position", "change", "realised_return"]]
    cells = grid_cells(positions, dates, strategies)
    rows = []
    for cost in costs:  # a few costs
        priced = reprice(slim, cost)
        means = date_means(positions, {"pnl": priced["pnl"].to_numpy(), "cost": priced["cost"].to_numpy()},
                           dates, strategies, cells)
        for name in strategies:
            r = means["pnl"][name].to_numpy()
            rows.append({"strategy": name, "cost_bps": float(cost),
                         "sharpe_ratio": M.sharpe_ratio(r, periods_per_year=periods_per_year),
                         "annual_return": M.annual_return(r, periods_per_year),
                         "total_return": float(np.prod(1.0 + r) - 1.0) if r.size else np.nan,
                         "max_drawdown": M.max_drawdown(r),
                         "cost_drag": float(means["cost"][name].mean()) * periods_per_year})
    return pd.DataFrame(rows).set_index(["strategy", "cost_bps"])[SENSITIVITY_COLUMNS]


def _cost_grid(cost_grid, cost_bps: float) -> list[float]:
    grid = list(cost_grid or ())
    bad = [c for c in grid if not (isinstance(c, (int, float, np.number)) and math.isfinite(c) and c >= 0)]
    if bad:
        raise ConfigError(f"build_leaderboard: cost_grid values must be finite numbers >= 0, got {bad}")
    return sorted({float(c) for c in grid} | {float(cost_bps)})


def build_leaderboard(folds: Sequence[FoldResult], n_trials: int | None = None,
                      periods_per_year: int = 252, *, trial_sharpe_variance: float | None = None,
                      cost_grid: Sequence[float] | None = DEFAULT_COST_GRID) -> Leaderboard:
    """Re-book every fold's decisions as one continuous record and rank the strategies.

    Args:
        folds: contiguous walk-forward folds (any order).
        n_trials: the DSR's trial count (default: the strategies on the board).
        trial_sharpe_variance: variance of the trials' per-period (daily, not annualised) Sharpe
            ratios; default: the board's strategies (module docstring).
        cost_grid: costs (bps) the chained book is re-priced at for ``cost_sensitivity``; the
            folds' own cost is always included.

    Raises:
        DataValidationError: overlapping folds or a gap between folds (naming the dates),
            differing strategies, primaries or costs, a symbol-day booked twice.
        ConfigError: no folds, ``n_trials < 1``, a bad variance or cost grid.
    """
    folds = _check_folds(folds)
    first = folds[0]
    costs = _cost_grid(cost_grid, first.cost_bps)
    decisions = pd.concat([f.decisions for f in folds], ignore_index=True)
    # raises DataValidationError if any (strategy, symbol, decision timestamp) is decided twice
    panel = unpack_decisions(decisions, first.booked_strategies)
    booked = book_decisions(panel, first.cost_bps, primary=first.model_name)
    if booked.strategies != first.strategies:
        raise DataValidationError(f"{LEADERBOARD}: re-booked strategies {booked.strategies} differ from "
                                  f"the folds' {first.strategies}", table=LEADERBOARD, column="strategy",
                                  check="same_strategies")
    daily, positions = booked.daily, booked.positions
    table = strategy_metrics(daily, positions, periods_per_year)

    n_trials, variance, source = _trials(daily, n_trials, trial_sharpe_variance)
    table["deflated_sharpe_ratio"] = [
        M.deflated_sharpe_ratio(daily[c].to_numpy(), n_trials=n_trials, sharpe_variance=variance)
        for c in daily.columns]
    table["n_folds"] = float(len(folds))
    table = table.sort_values("sharpe_ratio", ascending=False, na_position="last", kind="stable")

    fold_rows = pd.DataFrame({
        "start": [f.period[0] for f in folds], "end": [f.period[1] for f in folds],
        "n_days": [len(f.daily) for f in folds], "model_name": [f.model_name for f in folds],
        "exposure": [float(f.info.get("exposure", {}).get("position", np.nan)) for f in folds]})
    return Leaderboard(
        table=table, daily=daily, positions=positions, folds=fold_rows, cost_bps=first.cost_bps,
        n_trials=n_trials, trial_variance=variance, trial_variance_source=source,
        decisions=decisions, coverage=coverage_table(panel, [f.period for f in folds]),
        cost_sensitivity=_cost_sensitivity(positions, daily.index, booked.strategies, costs,
                                           periods_per_year),
        model_name=first.model_name, model_strategies=list(first.model_strategies),
        ensemble_name=first.ensemble_name, exposure=booked.exposure)
