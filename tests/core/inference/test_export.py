"""`export_predictions`: exactly the rows, one transaction, nothing written on any bad row."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data.contract import PREDICTIONS, TABLES
from plusultra_core.errors import ContractError, DataValidationError
from plusultra_core.inference.export import export_predictions


def _frame(n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=n)
    return pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-02"] * (n // 2) + ["2024-01-03"] * (n - n // 2)),
        "symbol": [f"S{i % 2}" for i in range(n)],
        "p_sell": p[:, 0], "p_hold": p[:, 1], "p_buy": p[:, 2], "position": p[:, 2] - p[:, 0],
        "expected_return": rng.normal(0, 0.01, n), "predicted_volatility": [0.02, np.nan, 0.01, 0.03][:n],
    })


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if PREDICTIONS not in names:
            return []
        return conn.execute(f"SELECT timestamp, symbol, checkpoint_id, p_sell, p_hold, p_buy, position, "
                            f"expected_return, predicted_volatility FROM {PREDICTIONS} "
                            "ORDER BY timestamp, symbol").fetchall()


def test_export_writes_exactly_the_rows_and_replaces(small_synth_db_path, copy_db):
    db = copy_db(small_synth_db_path)
    frame = _frame()
    assert export_predictions(db, frame, "ck1") == 4
    rows = _rows(db)
    assert [(r[0], r[1], r[2]) for r in rows] == [("2024-01-02", "S0", "ck1"), ("2024-01-02", "S1", "ck1"),
                                                 ("2024-01-03", "S0", "ck1"), ("2024-01-03", "S1", "ck1")]
    np.testing.assert_allclose([r[6] for r in rows], frame["position"])
    assert rows[1][8] is None and rows[0][8] == pytest.approx(0.02)             # NaN volatility -> NULL
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({PREDICTIONS})")]
    assert cols == list(TABLES[PREDICTIONS].column_names)
    # same keys again replace, another checkpoint adds
    again = frame.assign(p_buy=frame["p_sell"], p_sell=frame["p_buy"], position=-frame["position"])
    assert export_predictions(db, again, "ck1") == 4
    np.testing.assert_allclose([r[6] for r in _rows(db)], -frame["position"])
    export_predictions(db, frame, "ck2")
    assert len(_rows(db)) == 8


@pytest.mark.parametrize("column,value,check", [
    ("p_buy", np.nan, "finite"),
    ("p_hold", 0.9, "probability_sum"),
    ("position", 1.5, "position_range"),
    ("expected_return", np.inf, "finite"),
    ("predicted_volatility", -0.1, "volatility"),
])
def test_a_bad_row_writes_nothing(small_synth_db_path, copy_db, column, value, check):
    db = copy_db(small_synth_db_path)
    export_predictions(db, _frame(), "old")                                      # existing rows stay as they are
    before = _rows(db)
    bad = _frame()
    bad.loc[3, column] = value
    with pytest.raises(DataValidationError, match=rf"{PREDICTIONS} export: 1 row\(s\).*nothing was written") as info:
        export_predictions(db, bad, "new")
    assert info.value.check == check and info.value.column == column
    assert _rows(db) == before


def test_no_table_created_on_failure_and_other_errors(small_synth_db_path, copy_db, tmp_path):
    db = copy_db(small_synth_db_path)
    dup = pd.concat([_frame(2), _frame(2)], ignore_index=True)
    with pytest.raises(DataValidationError, match="repeat a"):
        export_predictions(db, dup, "ck")
    assert _rows(db) == [] and "predictions" not in sqlite3.connect(db).execute(
        "SELECT group_concat(name) FROM sqlite_master").fetchone()[0]
    with pytest.raises(ContractError, match="database not found"):
        export_predictions(tmp_path / "none.sqlite", _frame(), "ck")
    assert not (tmp_path / "none.sqlite").exists()
    with pytest.raises(DataValidationError, match="lacks columns"):
        export_predictions(db, _frame().drop(columns="p_hold"), "ck")
    with sqlite3.connect(db) as conn:                                            # a foreign predictions table
        conn.execute(f"CREATE TABLE {PREDICTIONS} (timestamp TEXT, symbol TEXT)")
    with pytest.raises(ContractError, match="lacks columns"):
        export_predictions(db, _frame(), "ck")
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {PREDICTIONS}").fetchone()[0] == 0
