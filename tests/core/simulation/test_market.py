"""market_arrays: a long bar frame becomes [S, T] inputs aligned as pnl_stream expects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plusultra_core.losses import pnl_stream
from plusultra_core.simulation import SimulatorConfig, market_arrays, simulate


def _frame():
    days = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    rows = [("AAA", d, r, 10.0, 100.0) for d, r in zip(days, [np.nan, 0.01, 0.02, -0.01])]
    # BBB has no bar on 01-04: its 01-05 return spans the gap
    rows += [("BBB", d, r, 20.0, 50.0) for d, r in zip(days[[0, 1, 3]], [np.nan, -0.02, 0.03])]
    return pd.DataFrame(rows, columns=["symbol", "timestamp", "ret_1d", "close", "volume"])


def test_returns_are_the_next_bar_and_gaps_hold():
    m = market_arrays(_frame().sample(frac=1.0, random_state=0))   # row order does not matter
    assert list(m.symbols) == ["AAA", "BBB"] and len(m.timestamps) == 4
    np.testing.assert_allclose(m.returns, [[0.01, 0.02, -0.01, 0.0], [-0.02, 0.0, 0.03, 0.0]])
    np.testing.assert_array_equal(m.has_next, [[True, True, True, False], [True, False, True, False]])
    np.testing.assert_allclose(m.dollar_volume, [[1000.0] * 4, [1000.0, 1000.0, 0.0, 1000.0]])
    # a long position held from the first close earns every later bar's ret_1d, gap included
    res = simulate(np.ones((2, 4)), m.returns, m.dollar_volume, SimulatorConfig.frictionless())
    np.testing.assert_allclose(res.gross_pnl.sum(axis=1), [0.02, 0.01])
    np.testing.assert_allclose(res.net_pnl, pnl_stream(np.ones((2, 4)), m.returns, 0.0))


def test_window_frame_without_prices_and_index_input():
    frame = _frame().drop(columns=["close", "volume"])
    assert market_arrays(frame).dollar_volume is None
    assert market_arrays(_frame().set_index(["timestamp", "symbol"])).returns.shape == (2, 4)


def test_bad_frames():
    with pytest.raises(ValueError, match="duplicated"):
        market_arrays(pd.concat([_frame(), _frame().iloc[:1]]))
    with pytest.raises(ValueError, match=r"missing from the frame: \['ret_1d'\]"):
        market_arrays(_frame().drop(columns=["ret_1d"]))
