"""simulate: parity with pnl_stream at zero friction, and each friction moving PnL as it must."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plusultra_core import metrics
from plusultra_core.losses import pnl_stream
from plusultra_core.simulation import COST_NAMES, SimulatorConfig, delay, simulate

FREE = SimulatorConfig.frictionless()


def _market(shape, seed=0):
    rng = np.random.default_rng(seed)
    target = np.clip(rng.normal(0.0, 0.6, shape), -1.0, 1.0)
    returns = rng.normal(0.0005, 0.01, shape)
    dollar_volume = rng.uniform(1e6, 1e8, shape)
    return target, returns, dollar_volume


# -- parity ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(50,), (7, 60), (3, 5, 40)])
def test_frictionless_equals_pnl_stream(shape):
    target, returns, dvol = _market(shape)
    res = simulate(target, returns, dvol, FREE)
    np.testing.assert_allclose(res.net_pnl, pnl_stream(target, returns, 0.0), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(res.positions, target)
    assert res.net_pnl.shape == shape and all(c.shape == shape for c in res.costs.values())
    assert float(np.min(res.fill_ratio())) == 1.0


def test_proportional_fee_equals_pnl_stream_cost():
    target, returns, _ = _market((4, 80), seed=1)
    res = simulate(target, returns, None, SimulatorConfig.frictionless(fee_bps=7.0))
    np.testing.assert_allclose(res.net_pnl, pnl_stream(target, returns, 7e-4), rtol=0, atol=1e-15)


def test_torch_input_and_shared_market_across_batch():
    target, returns, dvol = _market((2, 3, 30), seed=2)
    res = simulate(torch.tensor(target, dtype=torch.float64), returns[0], dvol[0], FREE)
    np.testing.assert_allclose(res.net_pnl, pnl_stream(target, np.broadcast_to(returns[0], target.shape), 0.0),
                               atol=1e-15)


# -- fees ------------------------------------------------------------------------------------------

def test_fee_is_proportional_to_turnover():
    target, returns, _ = _market((5, 100), seed=3)
    cfg = SimulatorConfig.frictionless(fee_bps=10.0)
    slow = simulate(target, returns, None, cfg)
    fast = simulate(2 * target, returns, None, cfg)        # twice the position changes
    np.testing.assert_allclose(slow.costs["fee"], 1e-3 * np.abs(np.diff(target, prepend=0.0)), atol=1e-18)
    assert fast.costs["fee"].sum() == pytest.approx(2 * slow.costs["fee"].sum())
    assert slow.portfolio_net.sum() < simulate(target, returns, None, FREE).portfolio_net.sum()


def test_fixed_fee_per_nonzero_change():
    target = np.array([[0.0, 0.5, 0.5, 0.5, -0.5, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    res = simulate(target, np.zeros_like(target), None, SimulatorConfig.frictionless(fixed_fee=10.0, capital=1e4))
    # trades: symbol 0 at bars 1, 4, 5; symbol 1 enters at bar 0 only
    np.testing.assert_allclose(res.costs["fixed_fee"].sum(axis=1), [3e-3, 1e-3])
    np.testing.assert_allclose(res.net_pnl.sum(), -4e-3)


# -- spread and impact by participation ------------------------------------------------------------

def test_spread_is_half_spread_per_traded_unit():
    target, returns, dvol = _market((3, 50), seed=4)
    res = simulate(target, returns, dvol, SimulatorConfig.frictionless(half_spread_bps=5.0))
    np.testing.assert_allclose(res.costs["spread"], 5e-4 * np.abs(res.trades), atol=1e-18)


def test_impact_grows_with_participation_by_the_square_root_law():
    target, returns, dvol = _market((4, 60), seed=5)
    cfg = SimulatorConfig.frictionless(impact_bps=20.0)
    deep = simulate(target, returns, dvol, cfg)
    thin = simulate(target, returns, dvol / 4.0, cfg)       # same trades, 4x the participation
    traded = np.abs(deep.trades) > 0
    np.testing.assert_allclose(thin.participation[traded], 4 * deep.participation[traded])
    np.testing.assert_allclose(thin.costs["impact"][traded], 2 * deep.costs["impact"][traded])   # sqrt(4)
    assert thin.portfolio_net.sum() < deep.portfolio_net.sum()
    linear = simulate(target, returns, dvol / 4.0, SimulatorConfig.frictionless(impact_bps=20.0, impact_exponent=1.0))
    np.testing.assert_allclose(linear.costs["impact"], 20e-4 * linear.participation * np.abs(linear.trades),
                               atol=1e-18)


# -- volume cap ------------------------------------------------------------------------------------

def test_volume_cap_clips_the_fill_and_carries_the_rest():
    # capital 1e6, dollar volume 1e6 per bar, cap 25%: at most 0.25 of equity per bar
    target = np.array([[1.0] * 6 + [0.0] * 6])
    returns = np.full_like(target, 0.01)
    dvol = np.full_like(target, 1e6)
    res = simulate(target, returns, dvol, SimulatorConfig.frictionless(max_participation=0.25))
    np.testing.assert_allclose(res.positions[0], [.25, .5, .75, 1, 1, 1, .75, .5, .25, 0, 0, 0])
    assert res.participation.max() == pytest.approx(0.25)
    assert float(res.fill_ratio()) < 1.0
    # every unit ordered is eventually bought and sold: the leftover executed later
    assert np.abs(res.trades).sum() == pytest.approx(2.0)
    np.testing.assert_allclose(res.gross_pnl, res.positions * returns)


def test_volume_cap_never_exceeded_and_fills_less_than_uncapped():
    target, returns, dvol = _market((6, 120), seed=6)
    dvol = dvol / 50.0                                      # a thin market: the cap binds often
    cfg = SimulatorConfig.frictionless(max_participation=0.05)
    capped = simulate(target, returns, dvol, cfg)
    free = simulate(target, returns, dvol, FREE)
    assert (capped.participation <= 0.05 + 1e-12).all()
    assert np.abs(capped.trades).sum() < np.abs(free.trades).sum()
    assert float(capped.fill_ratio()) < 1.0
    # a cap that never binds changes nothing
    loose = simulate(target, returns, dvol, SimulatorConfig.frictionless(max_participation=1e9))
    np.testing.assert_array_equal(loose.positions, target)


def test_zero_volume_bar_cannot_trade_under_a_cap():
    target = np.ones((1, 4))
    dvol = np.array([[0.0, 0.0, 1e7, 1e7]])
    res = simulate(target, np.zeros_like(target), dvol, SimulatorConfig.frictionless(max_participation=1.0))
    np.testing.assert_allclose(res.positions[0], [0, 0, 1, 1])


# -- latency ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bars", [1, 3])
def test_latency_equals_a_shifted_zero_latency_run(bars):
    target, returns, dvol = _market((2, 4, 50), seed=7)
    cfg = SimulatorConfig(latency_bars=bars, max_participation=0.02, max_leverage=2.0)
    late = simulate(target, returns, dvol, cfg)
    shifted = simulate(delay(target, bars), returns, dvol, SimulatorConfig(**{**cfg.to_dict(), "latency_bars": 0}))
    np.testing.assert_array_equal(late.positions, shifted.positions)
    np.testing.assert_array_equal(late.net_pnl, shifted.net_pnl)
    free = simulate(target, returns, None, SimulatorConfig.frictionless(latency_bars=bars))
    assert (free.positions[..., :bars] == 0).all()
    np.testing.assert_array_equal(free.positions[..., bars:], target[..., :-bars])
    np.testing.assert_allclose(free.net_pnl, pnl_stream(delay(target, bars), returns, 0.0), atol=1e-15)


# -- borrow ----------------------------------------------------------------------------------------

def test_borrow_charges_only_short_positions():
    target = np.array([[1.0, 1.0, 0.5, 0.0], [-1.0, -0.5, 0.0, 0.25]])
    cfg = SimulatorConfig.frictionless(borrow_bps=252.0)    # 1 bp per bar at 252 bars a year
    res = simulate(target, np.zeros_like(target), None, cfg)
    np.testing.assert_allclose(res.costs["borrow"], [[0, 0, 0, 0], [1e-4, 0.5e-4, 0, 0]])
    longs = simulate(np.abs(target), np.zeros_like(target), None, cfg)
    assert (longs.costs["borrow"] == 0).all()


# -- limits ----------------------------------------------------------------------------------------

def test_position_limit_clips_each_symbol():
    target = np.array([[2.0, -3.0, 0.4]])
    res = simulate(target, np.zeros_like(target), None, SimulatorConfig.frictionless(position_limit=0.5))
    np.testing.assert_allclose(res.positions, [[0.5, -0.5, 0.4]])


def test_leverage_cap_scales_gross_exposure():
    target, returns, dvol = _market((8, 40), seed=8)
    res = simulate(target, returns, None, SimulatorConfig.frictionless(max_leverage=1.5))
    gross_in, gross_out = np.abs(target).sum(axis=0), np.abs(res.positions).sum(axis=0)
    assert (gross_out <= 1.5 + 1e-12).all() and (gross_in > 1.5).any()
    np.testing.assert_allclose(gross_out, np.minimum(gross_in, 1.5))
    # proportional scaling keeps the book's shape
    ratio = res.positions / np.where(target == 0, 1.0, target)
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape))


def test_leverage_cap_holds_during_capped_rebalancing():
    # rotate the whole book from symbol 0 to symbol 1 under a volume cap: a naive fill would hold
    # both legs (gross 1.5) mid-way; the executed book must stay at <= 1
    target = np.array([[1.0] * 3 + [0.0] * 5, [0.0] * 3 + [1.0] * 5])
    dvol = np.array([[1e7] * 8, [1e7] * 8])
    dvol[0, 3:] = 2.5e5                                     # symbol 0 becomes hard to sell
    res = simulate(target, np.zeros_like(target), dvol,
                   SimulatorConfig.frictionless(max_participation=1.0, max_leverage=1.0))
    assert (np.abs(res.positions).sum(axis=0) <= 1.0 + 1e-12).all()
    np.testing.assert_allclose(res.positions[:, -1], [0.0, 1.0])


# -- validation ------------------------------------------------------------------------------------

def test_shape_and_value_errors_are_clear():
    target, returns, dvol = _market((3, 20))
    with pytest.raises(ValueError, match=r"returns has shape \(3, 19\)"):
        simulate(target, returns[:, :-1], dvol, FREE)
    with pytest.raises(ValueError, match=r"target must be \[T\], \[S, T\] or \[B, S, T\]"):
        simulate(target[None, None], returns, dvol, FREE)
    bad = returns.copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"returns has non-finite values \(first at index \(1, 4\)\)"):
        simulate(target, bad, dvol, FREE)
    with pytest.raises(ValueError, match="dollar_volume is required"):
        simulate(target, returns, None, SimulatorConfig())
    with pytest.raises(ValueError, match="dollar_volume must be >= 0"):
        simulate(target, returns, -dvol, SimulatorConfig())
    with pytest.raises(ValueError, match="zero-dollar-volume bar"):
        simulate(target, returns, np.zeros_like(dvol), SimulatorConfig.frictionless(impact_bps=5.0))


# -- result ----------------------------------------------------------------------------------------

def test_costs_add_up_and_summary_reuses_metrics():
    target, returns, dvol = _market((2, 5, 200), seed=9)
    res = simulate(target, returns, dvol / 20, SimulatorConfig(fixed_fee=5.0))
    assert set(res.costs) == set(COST_NAMES)
    assert all((c >= 0).all() for c in res.costs.values())
    np.testing.assert_allclose(res.net_pnl, res.gross_pnl - res.total_cost)
    rows = res.summary()
    assert len(rows) == 2
    assert rows[1]["sharpe_ratio"] == pytest.approx(metrics.sharpe_ratio(res.portfolio_net[1]))
    assert rows[1]["gross_sharpe_ratio"] > rows[1]["sharpe_ratio"]
    assert rows[1]["turnover"] == pytest.approx(res.turnover[1].mean())
    assert rows[1]["cost_total"] == pytest.approx(res.total_cost[1].sum())
    assert 0 < rows[1]["fill_ratio"] < 1 and rows[1]["max_participation"] <= 0.1 + 1e-12
    single = simulate(target[0, 0], returns[0, 0], dvol[0, 0], SimulatorConfig()).summary()
    assert isinstance(single, dict) and single["n_periods"] == 200
