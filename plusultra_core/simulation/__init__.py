"""Vectorised execution simulator: fees, spread and participation impact, volume cap, latency,
position and leverage limits, short borrow -- over ``[B, S, T]`` target positions.

`simulate(target, returns, dollar_volume, SimulatorConfig(...))` -> `SimulationResult`; at
`SimulatorConfig.frictionless()` its PnL is exactly `plusultra_core.losses.pnl_stream`'s.
`market_arrays(frame)` turns a long bar frame into the aligned ``[S, T]`` inputs. No Dagster here.
"""

from plusultra_core.simulation.config import SimulatorConfig
from plusultra_core.simulation.execution import apply_limits, delay, simulate
from plusultra_core.simulation.market import MarketArrays, market_arrays
from plusultra_core.simulation.result import COST_NAMES, SimulationResult

__all__ = ["SimulatorConfig", "SimulationResult", "COST_NAMES", "simulate", "apply_limits", "delay",
           "MarketArrays", "market_arrays"]
