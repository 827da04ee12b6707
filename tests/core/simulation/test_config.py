"""SimulatorConfig: bad values fail naming the field; frictionless really has no friction."""

from __future__ import annotations

import math

import pytest

from plusultra_core.errors import ConfigError
from plusultra_core.simulation import SimulatorConfig


@pytest.mark.parametrize("field, value", [
    ("fee_bps", -1.0), ("fee_bps", math.nan), ("fixed_fee", -0.01), ("half_spread_bps", math.inf),
    ("impact_bps", -5.0), ("impact_exponent", 0.0), ("impact_exponent", -0.5),
    ("max_participation", 0.0), ("max_participation", -0.1), ("max_participation", "10%"),
    ("latency_bars", -1), ("latency_bars", 1.5), ("latency_bars", True), ("position_limit", 0.0),
    ("position_limit", math.nan), ("max_leverage", 0.0), ("borrow_bps", -1.0), ("capital", 0.0),
    ("capital", math.inf), ("periods_per_year", 0), ("periods_per_year", 252.0),
])
def test_bad_value_names_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SimulatorConfig\.{field} must be"):
        SimulatorConfig(**{field: value})


def test_unknown_field_fails():
    with pytest.raises(TypeError, match="fee_bsp"):
        SimulatorConfig(fee_bsp=1.0)


def test_frictionless_and_overrides():
    cfg = SimulatorConfig.frictionless()
    assert cfg.fee_bps == cfg.fixed_fee == cfg.half_spread_bps == cfg.impact_bps == cfg.borrow_bps == 0
    assert cfg.max_participation is None and cfg.max_leverage is None and cfg.latency_bars == 0
    assert cfg.position_limit == math.inf and not cfg.needs_volume
    assert SimulatorConfig.frictionless(fee_bps=3.0).fee_bps == 3.0
    assert SimulatorConfig().needs_volume   # the realistic default has impact and a volume cap
    assert SimulatorConfig(**SimulatorConfig().to_dict()) == SimulatorConfig()


def test_frozen():
    with pytest.raises(AttributeError):
        SimulatorConfig().fee_bps = 2.0
