"""`SimulatorConfig`: every friction of the execution simulator as one validated, frozen field.

Units. Positions are fractions of the book's equity ``capital`` (1.0 = fully invested in that
symbol); every cost is charged in the same return units as ``pnl_stream`` (a fraction of
``capital`` per bar), so a frictionless run is exactly ``position * return``. Rates given in basis
points are converted once, here (``bps * 1e-4``), so no other module spells the conversion.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from plusultra_core.field_checks import is_number, require

__all__ = ["SimulatorConfig", "BPS"]

BPS = 1e-4  # one basis point as a fraction


def _integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class SimulatorConfig:
    """Frictions and limits of `simulate` (defaults: a liquid large-cap equity book).

    fee_bps:            proportional fee, bps of traded notional (commission, exchange fees).
    fixed_fee:          fee per trade in currency (charged on every bar where a symbol's executed
                        position changes), divided by ``capital`` to become a return.
    half_spread_bps:    half the bid-ask spread paid on every traded unit, bps of traded notional.
    impact_bps:         market-impact coefficient: cost per traded unit is
                        ``impact_bps * 1e-4 * participation ** impact_exponent``, with
                        participation = traded notional / bar dollar volume (1.0 = the whole bar).
    impact_exponent:    0.5 is the square-root law (Almgren et al. 2005, Toth et al. 2011); 1.0
                        is linear (Kyle) impact.
    max_participation:  volume cap, the largest fraction of a bar's dollar volume one fill may
                        take; the rest of the order waits for the next bar. None = no cap.
    latency_bars:       an order decided at the close of bar t fills at bar ``t + latency_bars``.
    position_limit:     per-symbol |position| cap; targets beyond it are clipped (inf = none).
    max_leverage:       gross exposure cap ``sum_s |position_s|`` per bar (targets are scaled
                        down proportionally; executions never cross it). None = no cap.
    borrow_bps:         annualised borrow/financing cost of short positions, bps of short notional,
                        charged per bar as ``borrow_bps * 1e-4 / periods_per_year``.
    capital:            book equity in currency: turns positions into traded notional for
                        participation and the fixed fee.
    periods_per_year:   bars per year (252 daily), for the borrow accrual and the summary.
    """

    fee_bps: float = 1.0
    fixed_fee: float = 0.0
    half_spread_bps: float = 1.0
    impact_bps: float = 10.0
    impact_exponent: float = 0.5
    max_participation: float | None = 0.1
    latency_bars: int = 0
    position_limit: float = 1.0
    max_leverage: float | None = None
    borrow_bps: float = 50.0
    capital: float = 1e6
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        for name in ("fee_bps", "fixed_fee", "half_spread_bps", "impact_bps", "borrow_bps"):
            require(self, name, lambda v: is_number(v) and v >= 0, "a finite number >= 0")
        require(self, "impact_exponent", lambda v: is_number(v) and v > 0, "a finite number > 0")
        require(self, "capital", lambda v: is_number(v) and v > 0, "a finite number > 0")
        require(self, "position_limit", lambda v: (is_number(v) or v == math.inf) and v > 0,
                "a number > 0 (math.inf = no limit)")
        require(self, "max_participation", lambda v: v is None or (is_number(v) and v > 0),
                "None or a finite number > 0 (a fraction of the bar's dollar volume)")
        require(self, "max_leverage", lambda v: v is None or (is_number(v) and v > 0),
                "None or a finite number > 0")
        for name in ("latency_bars", "periods_per_year"):
            low = 0 if name == "latency_bars" else 1
            require(self, name, lambda v, low=low: _integer(v) and v >= low, f"an integer >= {low}")

    @classmethod
    def frictionless(cls, **overrides) -> "SimulatorConfig":
        """No fees, spread, impact, borrow, cap or latency (``pnl_stream`` at cost 0); ``overrides`` on top."""
        base = dict(fee_bps=0.0, fixed_fee=0.0, half_spread_bps=0.0, impact_bps=0.0,
                    max_participation=None, latency_bars=0, max_leverage=None, borrow_bps=0.0,
                    position_limit=math.inf)
        base.update(overrides)
        return cls(**base)

    @property
    def needs_volume(self) -> bool:
        """True when a run needs bar dollar volumes (impact or a volume cap)."""
        return self.impact_bps > 0 or self.max_participation is not None

    def to_dict(self) -> dict:
        """Plain field -> value mapping (for sidecars and report metadata)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
