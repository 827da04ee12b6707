"""Executed trades as feedback: fills (the contract's ``trades``) reconciled with the positions the
inference frames proposed -- implementation shortfall per symbol and day, fill rate, realised vs
simulated costs -- and the realised cost the evaluation may book instead of its configured one.

`reconcile_fills(trades, proposals, closes, ...)` -> `Reconciliation`; `check_fills` names every
bad fill. Conventions are in `shortfall`'s docstring. No Dagster here.
"""

from plusultra_core.reconciliation.fills import REASONS, attach_decisions, check_fills, fill_problems
from plusultra_core.reconciliation.shortfall import TABLE_COLUMNS, paper_orders, price_fills
from plusultra_core.reconciliation.summary import SUMMARY_KEYS, Reconciliation, reconcile_fills

__all__ = ["REASONS", "attach_decisions", "check_fills", "fill_problems", "TABLE_COLUMNS", "paper_orders",
           "price_fills", "SUMMARY_KEYS", "Reconciliation", "reconcile_fills"]
