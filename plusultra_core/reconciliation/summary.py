"""`reconcile_fills`: trades + proposals + closes in, the reconciliation (table and summary) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from plusultra_core.reconciliation.fills import check_fills
from plusultra_core.reconciliation.shortfall import BPS, paper_orders, price_fills

SUMMARY_KEYS = ("days", "symbols", "fills", "fill_rate", "intended_notional", "traded_notional",
                "realised_cost_bps", "simulated_cost_bps", "execution_cost", "simulated_cost",
                "opportunity_cost", "shortfall_bps", "pending_days")


@dataclass
class Reconciliation:
    """Per (decision day, symbol) rows (`shortfall.TABLE_COLUMNS`), the fills in scope (None when
    rebuilt from stored rows), and the aggregates: `summary()` for the whole range (its
    ``realised_cost_bps`` is what the evaluation may book), `by_symbol()` one row per symbol."""

    table: pd.DataFrame
    cost_bps: float
    fills: pd.DataFrame | None = None

    def summary(self) -> dict:
        return _aggregate(self.table, self.cost_bps)

    def by_symbol(self) -> pd.DataFrame:
        rows = {s: _aggregate(g, self.cost_bps) for s, g in self.table.groupby("symbol")}
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_KEYS)).rename_axis("symbol")


def _aggregate(t: pd.DataFrame, cost_bps: float) -> dict:
    intended, filled = t["intended_shares"].to_numpy(), t["filled_shares"].to_numpy()
    p0 = t["decision_price"].to_numpy()
    # the part of each paper order the fills did execute: same direction, at most the order
    done = np.where(np.sign(filled) == np.sign(intended), np.minimum(np.abs(filled), np.abs(intended)), 0.0) * p0
    intended_notional, traded = float(t["intended_notional"].sum()), float(t["traded_notional"].sum())
    known = t["next_close"].notna().to_numpy()      # opportunity cost needs the next bar
    shortfall = float(t["shortfall"].to_numpy()[known].sum())
    return {
        "days": int(t["day"].nunique()), "symbols": int(t["symbol"].nunique()), "fills": int(t["fills"].sum()),
        "fill_rate": float(done.sum() / intended_notional) if intended_notional > 0 else float("nan"),
        "intended_notional": intended_notional, "traded_notional": traded,
        "realised_cost_bps": float(BPS * t["execution_cost"].sum() / traded) if traded > 0 else float("nan"),
        "simulated_cost_bps": float(cost_bps),
        "execution_cost": float(t["execution_cost"].sum()), "simulated_cost": float(t["simulated_cost"].sum()),
        "opportunity_cost": float(t["opportunity_cost"].to_numpy()[known].sum()),
        "shortfall_bps": float(BPS * shortfall / t["intended_notional"].to_numpy()[known].sum())
        if t["intended_notional"].to_numpy()[known].sum() > 0 else float("nan"),
        "pending_days": int(t.loc[~known, "day"].nunique()),
    }


def reconcile_fills(trades: pd.DataFrame, proposals: pd.DataFrame, closes: pd.DataFrame, *,
                    known_symbols: Iterable[str], trading_days, capital: float, cost_bps: float,
                    previous: pd.DataFrame | None = None, where: str = "trades") -> Reconciliation:
    """Check every row of ``trades`` (raises `DataValidationError` naming each bad one), keep the
    fills that execute one of ``proposals``' decision days, and price them against the paper book.

    ``trading_days`` is the market's calendar (a fill without ``decision_timestamp`` executes the
    last trading day before it); ``previous`` the frame of the decision day before the first one.
    """
    orders = paper_orders(proposals, closes, capital=capital, previous=previous)
    checked = check_fills(trades, known_symbols, trading_days, orders.index, where=where)
    days = orders.index.get_level_values("day").unique()
    in_scope = checked[checked["decision"].isin(days).to_numpy()]
    return Reconciliation(table=price_fills(orders, in_scope, cost_bps), fills=in_scope, cost_bps=float(cost_bps))
