"""`SimulationResult`: what one simulator run executed and what it cost, per symbol and bar.

Dimension legend: ``B`` batch (policies or environments), ``S`` symbols, ``T`` bars. Every array
has the layout of the run's target (``[T]``, ``[S, T]`` or ``[B, S, T]``); portfolio series sum
over the symbol axis (positions are fractions of one book's equity, so the book's return is the
sum of its symbols' PnL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plusultra_core import metrics
from plusultra_core.simulation.config import SimulatorConfig

__all__ = ["SimulationResult", "COST_NAMES"]

COST_NAMES = ("fee", "fixed_fee", "spread", "impact", "borrow")


@dataclass(frozen=True)
class SimulationResult:
    """Per-bar outcome of `simulate` (float64 numpy arrays, the target's layout).

    orders:        the target after the position limit and leverage cap, at *decision* time.
    positions:     executed position held over bar t (earns ``returns[..., t]``).
    trades:        executed position change at bar t (``positions_t - positions_{t-1}``, flat before).
    requested:     the change the book wanted at bar t: the order due at t (decided at
                   ``t - latency``) minus the position before it, including any unfilled rest.
    participation: |trade| notional / bar dollar volume (0 where nothing traded).
    gross_pnl:     ``positions * returns``.
    costs:         friction name (`COST_NAMES`) -> per-bar cost, >= 0, in return units.
    net_pnl:       ``gross_pnl - sum(costs)``.
    config:        the `SimulatorConfig` of the run.
    """

    orders: np.ndarray
    positions: np.ndarray
    trades: np.ndarray
    requested: np.ndarray
    participation: np.ndarray
    gross_pnl: np.ndarray
    costs: dict[str, np.ndarray]
    net_pnl: np.ndarray
    config: SimulatorConfig

    @property
    def symbol_axis(self) -> int | None:
        """Axis of the symbols (-2), or None for a single ``[T]`` series."""
        return -2 if self.net_pnl.ndim >= 2 else None

    def _book(self, values: np.ndarray) -> np.ndarray:
        """[..., S, T] -> [..., T] summed over symbols (a [T] series is already a book)."""
        return values if self.symbol_axis is None else values.sum(axis=self.symbol_axis)

    @property
    def portfolio_net(self) -> np.ndarray:
        """Net return of the book per bar, ``[..., T]``."""
        return self._book(self.net_pnl)

    @property
    def portfolio_gross(self) -> np.ndarray:
        """Gross (frictionless, same executions) return of the book per bar, ``[..., T]``."""
        return self._book(self.gross_pnl)

    @property
    def turnover(self) -> np.ndarray:
        """Gross traded |position change| of the book per bar, ``[..., T]`` (`metrics.turnover`'s definition)."""
        return self._book(np.abs(self.trades))

    @property
    def total_cost(self) -> np.ndarray:
        """Sum of every friction per symbol and bar, same layout as ``net_pnl``."""
        return sum(self.costs.values())

    def fill_ratio(self) -> np.ndarray:
        """Executed / requested |position change| over the run: ``[B]`` for a batch, else a 0-d array.

        1.0 when every order filled on the bar it was due (or nothing was requested); below 1
        when a volume cap or the leverage cap held part of an order back. A leftover that fills
        on a later bar is requested again there, so this is the share of demanded trading that
        the market let through, bar by bar.
        """
        axes = tuple(range(-min(self.trades.ndim, 2), 0))
        done = np.abs(self.trades).sum(axis=axes)
        asked = np.abs(self.requested).sum(axis=axes)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(asked > 0, done / np.where(asked > 0, asked, 1.0), 1.0)

    def summary(self) -> dict[str, float] | list[dict[str, float]]:
        """Headline metrics of the book's net returns (`metrics.summary`) plus execution facts.

        Adds ``gross_sharpe_ratio``, ``fill_ratio``, ``mean_participation`` (over bars that
        traded), ``max_participation``, ``cost_total`` and ``cost_<friction>`` (summed over bars
        and symbols: the drag in return units). One dict, or one per batch element for ``[B, S, T]``.
        """
        net, gross, fill = self.portfolio_net, self.portfolio_gross, self.fill_ratio()
        if net.ndim == 1:
            return self._summary_one(net, gross, float(fill), ())
        return [self._summary_one(net[b], gross[b], float(fill[b]), (b,)) for b in range(net.shape[0])]

    def _summary_one(self, net, gross, fill: float, index: tuple) -> dict[str, float]:
        ppy = self.config.periods_per_year
        positions = self.positions[index]
        out = metrics.summary(net, positions=positions.T if positions.ndim == 2 else positions,
                              periods_per_year=ppy)
        out["gross_sharpe_ratio"] = metrics.sharpe_ratio(gross, periods_per_year=ppy)
        out["fill_ratio"] = fill
        part, traded = self.participation[index], self.trades[index] != 0
        out["mean_participation"] = float(part[traded].mean()) if traded.any() else 0.0
        out["max_participation"] = float(part.max()) if part.size else 0.0
        for name, cost in self.costs.items():
            out[f"cost_{name}"] = float(cost[index].sum())
        out["cost_total"] = float(sum(out[f"cost_{name}"] for name in self.costs))
        return out
