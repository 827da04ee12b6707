"""Reconciliation of executed fills with proposed positions: hand-computed shortfall, every kind
of bad fill named, decisions implied by the calendar, and the demo's synthetic fill log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.reconciliation import REASONS, attach_decisions, reconcile_fills

# Mon 1 Jan 2018 is a holiday in this calendar: trading days Tue 2 .. Fri 5, Mon 8, Tue 9
DAYS = pd.DatetimeIndex(["2018-01-02", "2018-01-03", "2018-01-04", "2018-01-05", "2018-01-08", "2018-01-09"])
CAPITAL = 10_000.0


def closes() -> pd.DataFrame:
    rows = [(d, "A", 100.0 + i) for i, d in enumerate(DAYS)] + [(d, "B", 50.0 - i) for i, d in enumerate(DAYS)]
    return pd.DataFrame(rows, columns=["timestamp", "symbol", "close"])


def proposals() -> pd.DataFrame:
    # day 2: A long half, B short; day 3: A fully long, B leaves the frame (flat)
    return pd.DataFrame([(DAYS[1], "A", 0.5), (DAYS[1], "B", -1.0), (DAYS[2], "A", 1.0)],
                        columns=["timestamp", "symbol", "position"])


def trades(*rows) -> pd.DataFrame:
    cols = ["trade_id", "timestamp", "symbol", "side", "quantity", "price", "fee", "strategy", "decision_timestamp"]
    return pd.DataFrame([(i + 1, *r) for i, r in enumerate(rows)], columns=cols)


def run(fills: pd.DataFrame, **kw):
    return reconcile_fills(fills, proposals(), closes(), known_symbols=["A", "B", "C"], trading_days=DAYS,
                           capital=CAPITAL, cost_bps=5.0, **kw)


def test_shortfall_by_hand():
    fills = trades(("2018-01-04 09:45:00", "A", "buy", 10.0, 102.0, 1.0, None, None),   # decision Jan 3
                   ("2018-01-04", "B", "sell", 60.0, 48.5, 0.5, None, None),             # decision Jan 3
                   ("2018-01-05", "A", "buy", 20.0, 103.5, 0.0, None, "2018-01-04"))     # named decision
    table = run(fills).table.set_index(["day", "symbol"])
    a3 = table.loc[(DAYS[1], "A")]
    # target 0.5 * 10000 / 2 symbols / close 101 = 24.752 shares from flat
    assert a3["intended_shares"] == pytest.approx(0.5 * CAPITAL / 2 / 101.0)
    assert a3["filled_shares"] == 10.0
    assert a3["execution_cost"] == pytest.approx(10 * (102.0 - 101.0) + 1.0)
    assert a3["opportunity_cost"] == pytest.approx((a3["intended_shares"] - 10) * (102.0 - 101.0))
    assert a3["fill_rate"] == pytest.approx(10 / a3["intended_shares"])
    assert a3["realised_cost_bps"] == pytest.approx(1e4 * 11.0 / (10 * 101.0))
    assert a3["simulated_cost"] == pytest.approx(5e-4 * a3["intended_notional"])
    b3 = table.loc[(DAYS[1], "B")]
    # a sell: paying below the decision price is a cost; 49 -> 48.5 on 60 shares
    assert b3["execution_cost"] == pytest.approx(-60 * (48.5 - 49.0) + 0.5)
    # Jan 4: A goes to 1.0 of the whole book (1 symbol); B leaves the frame and is sold to flat
    a4, b4 = table.loc[(DAYS[2], "A")], table.loc[(DAYS[2], "B")]
    assert a4["intended_shares"] == pytest.approx(CAPITAL / 102.0 - 0.5 * CAPITAL / 2 / 101.0)
    assert b4["position"] == 0.0 and b4["intended_shares"] == pytest.approx(CAPITAL / 2 / 49.0)
    assert b4["filled_shares"] == 0 and b4["fill_rate"] == 0.0


def test_perfect_execution_has_no_shortfall():
    # fill every paper order exactly at the decision close, no fee
    orders = run(trades()).table
    rows = [(str((DAYS[DAYS.get_loc(r.day) + 1]).date()), r.symbol, "buy" if r.intended_shares > 0 else "sell",
             abs(r.intended_shares), r.decision_price, 0.0, None, None) for r in orders.itertuples()]
    result = run(trades(*rows))
    summary = result.summary()
    assert summary["fill_rate"] == pytest.approx(1.0)
    assert summary["realised_cost_bps"] == pytest.approx(0.0, abs=1e-9)
    assert summary["shortfall_bps"] == pytest.approx(0.0, abs=1e-9)
    assert summary["fills"] == len(rows)


def test_decision_is_the_last_trading_day_before_the_fill():
    fills = trades(("2018-01-08", "A", "buy", 1.0, 100.0, 0.0, None, None),     # Monday -> Friday
                   ("2018-01-03 10:00:00", "A", "buy", 1.0, 100.0, 0.0, None, None),
                   ("2018-01-05", "A", "buy", 1.0, 100.0, 0.0, None, "2018-01-02"))
    decided = attach_decisions(fills, DAYS)["decision"]
    assert list(decided) == [pd.Timestamp("2018-01-05"), pd.Timestamp("2018-01-02"), pd.Timestamp("2018-01-02")]


@pytest.mark.parametrize("row, reason", [
    (("2018-01-04", "ZZZ", "buy", 1.0, 10.0, 0.0, None, None), "unknown_symbol"),
    (("2018-01-04", "A", "buy", -3.0, 10.0, 0.0, None, None), "non_positive_quantity"),
    (("2018-01-04", "A", "short", 3.0, 10.0, 0.0, None, None), "bad_side"),
    (("2018-01-04", "A", "buy", 3.0, 0.0, 0.0, None, None), "non_positive_price"),
    (("2018-01-04", "A", "buy", 3.0, 10.0, -1.0, None, None), "negative_fee"),
    (("yesterday", "A", "buy", 3.0, 10.0, 0.0, None, None), "bad_timestamp"),
    (("2018-01-03 15:00:00", "A", "buy", 3.0, 10.0, 0.0, None, "2018-01-03"), "fill_not_after_decision"),
    (("2018-01-04", "A", "buy", 3.0, 10.0, 0.0, None, "2018-01-05"), "fill_not_after_decision"),
    (("2018-01-04", "A", "buy", 3.0, 10.0, 0.0, None, "01/03/2018"), "bad_decision_timestamp"),
    (("2018-01-04", "C", "buy", 3.0, 10.0, 0.0, None, None), "no_proposed_position"),  # C: never proposed
])
def test_bad_fill_is_named_and_nothing_is_returned(row, reason):
    good = ("2018-01-04", "A", "buy", 1.0, 101.0, 0.0, None, None)
    with pytest.raises(DataValidationError) as err:
        run(trades(good, row))
    message = str(err.value)
    assert "1 bad fill(s)" in message and "trade_id 2 " in message and REASONS[reason] in message
    assert "\n" not in message
    assert list(err.value.failure_cases["problem"]) == [reason]


def test_fills_of_other_days_are_checked_but_not_priced():
    fills = trades(("2018-01-09", "A", "buy", 5.0, 105.0, 0.0, None, None),      # decision Jan 8: out of scope
                   ("2018-01-04", "A", "buy", 5.0, 102.0, 0.0, None, None))
    result = run(fills)
    assert result.summary()["fills"] == 1 and list(result.fills["trade_id"]) == [2]
    with pytest.raises(DataValidationError, match="trade_id 1 .*not a number > 0"):
        run(trades(("2018-01-09", "A", "buy", 0.0, 105.0, 0.0, None, None)))


def test_starting_position_comes_from_the_previous_frame():
    previous = pd.DataFrame([(DAYS[0], "A", 0.5), (DAYS[0], "B", -1.0)], columns=["timestamp", "symbol", "position"])
    table = run(trades(), previous=previous).table.set_index(["day", "symbol"])
    assert DAYS[0] not in table.index.get_level_values("day")
    # same weights as the day before: only the constant-notional rebalance of a moved price
    assert table.loc[(DAYS[1], "A"), "intended_shares"] == pytest.approx(2500 / 101.0 - 2500 / 100.0)


def test_capital_must_be_positive():
    with pytest.raises(ConfigError, match="capital"):
        reconcile_fills(trades(), proposals(), closes(), known_symbols=["A", "B"], trading_days=DAYS,
                        capital=0.0, cost_bps=5.0)


def test_demo_fill_log_is_seeded_labelled_and_valid():
    from plusultra_core.data.demo_db import load_demo_sources, repair_ohlcv
    from plusultra_core.data.demo_fills import SYNTHETIC_STRATEGY, synthetic_fills
    from plusultra_core.reconciliation import check_fills

    raw, _ = load_demo_sources()
    candles = {s: repair_ohlcv(df)[0] for s, df in raw.items()}
    fills = synthetic_fills(candles)
    assert fills.equals(synthetic_fills(candles))                              # seeded
    assert len(fills) > 100 and set(fills["strategy"]) == {SYNTHETIC_STRATEGY}
    assert fills["trade_id"].is_unique and (fills["decision_timestamp"] >= "2018-01-02").all()
    calendar = pd.DatetimeIndex(sorted(set().union(*(df.index for df in candles.values()))))
    checked = check_fills(fills, list(candles), calendar)                        # every row passes
    assert (checked["fill_day"] > checked["decision"]).all()
    day = pd.Timestamp(fills["timestamp"].iloc[0][:10])
    sym = fills["symbol"].iloc[0]
    bar = candles[sym].loc[day]
    assert bar["low"] <= fills["price"].iloc[0] <= bar["high"]
    assert np.all(fills["quantity"] > 0)


def test_a_database_older_than_decision_timestamp_still_follows_the_contract(tmp_path):
    import sqlite3

    from plusultra_core.data import contract
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_core.data.validation import validate_database

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        for name in contract.CONTRACT_TABLES:
            if name != contract.TRADES:
                conn.execute(contract.TABLES[name].ddl())
        conn.execute("CREATE TABLE trades (trade_id INTEGER PRIMARY KEY, timestamp TEXT, symbol TEXT, side TEXT, "
                     "quantity REAL, price REAL, fee REAL, strategy TEXT)")
        conn.execute("INSERT INTO assets VALUES ('A', 'a', 'equity', NULL, 'USD', NULL, 1, 0)")
        conn.execute("INSERT INTO trades VALUES (1, '2018-01-03', 'A', 'buy', 1, 10, 0, NULL)")
    report = validate_database(path)
    assert report.tables["trades"].ok, report.to_text()
    rows = SQLiteMarketDataset(path).trades()
    assert list(rows.columns) == list(contract.TABLES[contract.TRADES].column_names)
    assert rows["decision_timestamp"].isna().all() and len(rows) == 1
