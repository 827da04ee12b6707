"""Invariants of the capped, levered, delayed execution on random markets (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plusultra_core.simulation import SimulatorConfig, delay, simulate

CASES = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "batch": st.integers(1, 3), "symbols": st.integers(1, 5), "bars": st.integers(1, 40),
    "cap": st.sampled_from([None, 0.01, 0.1, 1.0]), "leverage": st.sampled_from([None, 0.5, 1.0, 3.0]),
    "latency": st.integers(0, 3), "limit": st.sampled_from([0.3, 1.0, 2.0]),
})


@settings(max_examples=60, deadline=None)
@given(CASES)
def test_execution_invariants(case):
    rng = np.random.default_rng(case["seed"])
    shape = (case["batch"], case["symbols"], case["bars"])
    target = rng.normal(0.0, 1.0, shape) * rng.integers(0, 2, shape)       # some flat bars
    returns = rng.normal(0.0, 0.02, shape)
    dvol = rng.choice([0.0, 1e5, 1e6, 1e7], size=shape)
    cfg = SimulatorConfig(max_participation=case["cap"], max_leverage=case["leverage"],
                          latency_bars=case["latency"], position_limit=case["limit"], fixed_fee=1.0,
                          impact_bps=10.0 if case["cap"] else 0.0)
    res = simulate(target, returns, dvol, cfg)
    pos, before = res.positions, delay(res.positions, 1)
    due = delay(res.orders, case["latency"])
    tol = 1e-9
    # limits hold on the executed book
    assert (np.abs(pos) <= case["limit"] + tol).all()
    if case["leverage"] is not None:
        assert (np.abs(pos).sum(axis=1) <= case["leverage"] + tol).all()
    # the volume cap is never exceeded, and every fill moves toward the order, never past it
    if case["cap"] is not None:
        assert (np.abs(res.trades) * cfg.capital <= case["cap"] * dvol + 1e-6).all()
    assert (res.trades * res.requested >= -tol).all()
    assert (np.abs(res.trades) <= np.abs(res.requested) + tol).all()
    if case["cap"] is None and case["leverage"] is None:
        np.testing.assert_array_equal(pos, due)
    # accounting: costs are non-negative, net = gross - costs, and the fill ratio is a ratio
    assert all((c >= 0).all() for c in res.costs.values())
    np.testing.assert_allclose(res.net_pnl, pos * returns - res.total_cost, atol=1e-15)
    assert ((res.fill_ratio() >= 0) & (res.fill_ratio() <= 1 + tol)).all()
