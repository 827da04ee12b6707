"""Executed fills: check every row and attach the decision it executes.

A fill (a ``trades`` row) executes one *decision*: the positions an inference day proposed after
that day's close. ``decision_timestamp`` names it; when NULL it is the last trading day strictly
before the fill's date (a fill on Wednesday executes Tuesday's decision). A decision made after
the close of ``D`` can only be executed after ``D``, so a fill dated on or before its decision day
is impossible -- a booking error or a look-ahead in the log -- and is refused like the other bad
rows below. Everything is a vectorised mask; `check_fills` raises one `DataValidationError` that
names each bad row (trade id, SQLite rowid, what is wrong) and writes nothing.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from plusultra_core.data import schemas
from plusultra_core.data.contract import TRADES
from plusultra_core.errors import DataValidationError

SIDES = {"buy": 1.0, "sell": -1.0}
MAX_ROWS_NAMED = 5

# reason -> what the error line says about the row
REASONS = {
    "unknown_symbol": "symbol not in assets",
    "bad_side": "side is not 'buy' or 'sell'",
    "non_positive_quantity": "quantity is not a number > 0",
    "non_positive_price": "price is not a number > 0",
    "negative_fee": "fee is not a number >= 0",
    "bad_timestamp": "timestamp is not an ISO-8601 date",
    "bad_decision_timestamp": "decision_timestamp is not an ISO-8601 date",
    "no_decision_before_fill": "no trading day before the fill to execute",
    "fill_not_after_decision": "filled on or before the decision it executes (decisions are made after the close)",
    "no_proposed_position": "no inference frame proposed a position for this symbol on its decision day",
}


def _number(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(np.float64)


def _days(values: pd.Series) -> pd.DatetimeIndex:
    """Dates of contract timestamps (NaT where NULL, unparseable or zoned); a time of day is dropped."""
    return pd.DatetimeIndex(schemas.parse_timestamps(values.to_numpy(object))).normalize()


def attach_decisions(fills: pd.DataFrame, trading_days: Iterable) -> pd.DataFrame:
    """``fills`` (the ``trades`` columns) with ``fill_day``, ``decision`` (its decision day, NaT when none can be named) and
    ``signed_quantity`` (buy +, sell -) columns; nothing is checked here."""
    days = pd.DatetimeIndex(sorted(pd.DatetimeIndex(trading_days).normalize().unique()))
    fill_day = _days(fills["timestamp"])
    claimed = _days(fills["decision_timestamp"])
    before = days.searchsorted(fill_day, side="left") - 1         # the last trading day < fill day
    implied = np.where((before >= 0) & fill_day.notna(), days[np.clip(before, 0, None)].to_numpy()
                       if len(days) else np.datetime64("NaT"), np.datetime64("NaT"))
    # a decision_timestamp that is given but unparseable stays NaT (reported), never the implied day
    given = fills["decision_timestamp"].notna().to_numpy()
    decision = np.where(given, claimed.to_numpy(), implied)
    side = fills["side"].map(SIDES).to_numpy(np.float64)
    return fills.assign(fill_day=fill_day, decision=pd.DatetimeIndex(decision),
                        signed_quantity=side * _number(fills["quantity"]))


def fill_problems(fills: pd.DataFrame, known_symbols: Iterable[str],
                  proposed: pd.MultiIndex | None = None) -> pd.Series:
    """Per row of `attach_decisions`' output: the first reason (a key of ``REASONS``) it is bad,
    or ``""``. ``proposed`` holds the (decision day, symbol) pairs of the paper book
    (`shortfall.paper_orders`' index); a fill executing one of its days for a symbol it does not
    hold or trade is bad. Fills of other days get the row checks only."""
    n = len(fills)
    reason = np.full(n, "", dtype=object)

    def flag(mask, key: str) -> None:
        reason[(reason == "") & np.asarray(mask, dtype=bool)] = key

    quantity, price, fee = (_number(fills[c]) for c in ("quantity", "price", "fee"))
    flag(~fills["symbol"].astype("string").isin(set(map(str, known_symbols))).fillna(False).to_numpy(), "unknown_symbol")
    flag(~fills["side"].isin(list(SIDES)).to_numpy(), "bad_side")
    flag(~(np.isfinite(quantity) & (quantity > 0)), "non_positive_quantity")
    flag(~(np.isfinite(price) & (price > 0)), "non_positive_price")
    flag(~(np.isfinite(fee) & (fee >= 0)), "negative_fee")
    flag(fills["fill_day"].isna().to_numpy(), "bad_timestamp")
    given = fills["decision_timestamp"].notna().to_numpy()
    flag(given & fills["decision"].isna().to_numpy(), "bad_decision_timestamp")
    flag(fills["decision"].isna().to_numpy(), "no_decision_before_fill")
    flag((fills["fill_day"] <= fills["decision"]).to_numpy(), "fill_not_after_decision")
    if proposed is not None:
        pairs = pd.MultiIndex.from_arrays([fills["decision"], fills["symbol"].astype(str)])
        scope = fills["decision"].isin(proposed.get_level_values(0).unique()).to_numpy()
        flag(scope & ~pairs.isin(proposed), "no_proposed_position")
    return pd.Series(reason, index=fills.index, name="problem")


def check_fills(fills: pd.DataFrame, known_symbols: Iterable[str], trading_days: Iterable,
                proposed: pd.MultiIndex | None = None, *, where: str = TRADES) -> pd.DataFrame:
    """`attach_decisions` plus `fill_problems`; raises `DataValidationError` (one line naming the
    first bad rows, ``failure_cases`` holding every one with its reason) when any row is bad."""
    attached = attach_decisions(fills, trading_days)
    problems = fill_problems(attached, known_symbols, proposed)
    bad = problems != ""
    if bad.any():
        cases = attached.loc[bad, [c for c in fills.columns]].assign(problem=problems[bad])
        named = "; ".join(
            f"trade_id {row.trade_id} (rowid {rowid}, {row.symbol} {row.side} {row.quantity} on {row.timestamp}): "
            f"{REASONS[row.problem]}" for rowid, row in cases.head(MAX_ROWS_NAMED).iterrows())
        more = f" and {int(bad.sum()) - MAX_ROWS_NAMED} more" if bad.sum() > MAX_ROWS_NAMED else ""
        raise DataValidationError(f"{where}: {int(bad.sum())} bad fill(s): {named}{more}",
                                  table=TRADES, check="fills", failure_cases=cases)
    return attached
