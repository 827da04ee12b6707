"""Vectorised execution simulator: target positions in, fills, frictions and net PnL out.

Convention (exactly `plusultra_core.losses.pnl_stream`'s): ``target[..., t]`` is the position
decided at the close of bar t and ``returns[..., t]`` the return earned by *holding* it (the next
bar's return -- the caller aligns, `market.market_arrays` does it for a frame). The book starts
flat. With no frictions, latency or caps, ``positions == target`` and
``net_pnl == pnl_stream(target, returns, 0.0)``.

A run, in order (``B`` batch, ``S`` symbols, ``T`` bars; all ``[B, S, T]`` unless noted):

1. limits:   clip each target to ``±position_limit``, then scale each bar's book down so
             ``sum_s |target| <= max_leverage`` (proportional, keeps the book's shape).
2. latency:  the order due at bar t is the one decided at ``t - latency_bars`` (flat before).
3. fills:    with no volume cap the executed position *is* the order (closed form). With a cap
             a fill may move a position by at most ``max_participation * dollar_volume / capital``
             per bar; the unfilled rest carries: the book keeps trading toward the newest order
             on the next bars (a newer order replaces an older one, as a target-position book
             does). That makes position t depend on position t-1, the one state that forces a
             loop over bars -- each step is vectorised over batch and symbols (``[B, S]``). Under
             a leverage cap a step executes every risk-reducing trade first and scales the
             risk-increasing rest so the executed book never exceeds ``max_leverage``.
4. frictions per symbol and bar, in return units (fractions of ``capital``):
             fee    ``fee_bps   * |trade|``
             fixed  ``fixed_fee / capital`` on each bar whose |trade| > 0
             spread ``half_spread_bps * |trade|``
             impact ``impact_bps * participation ** impact_exponent * |trade|``,
                    participation ``= |trade| * capital / dollar_volume``
             borrow ``borrow_bps / periods_per_year * max(-position, 0)``
             ``net = position * returns - sum(frictions)``.
"""

from __future__ import annotations

import numpy as np

from plusultra_core.simulation.config import BPS, SimulatorConfig
from plusultra_core.simulation.result import SimulationResult

__all__ = ["simulate", "apply_limits", "delay"]


def _array(values, name: str) -> np.ndarray:
    """Float64 numpy view of a numpy array / torch tensor / sequence; non-finite is a caller bug."""
    if hasattr(values, "detach"):                                    # torch.Tensor, no torch import
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.ndim > 3:
        raise ValueError(f"simulate: {name} must be [T], [S, T] or [B, S, T], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"simulate: {name} has non-finite values (first at index {bad}); "
                         f"a missing return is a flat bar, pass 0.0 there")
    return arr


def _market(values, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A market array ``[S, T]`` or the target's full shape, broadcast to ``[B, S, T]``."""
    arr = _array(values, name)
    full = shape if len(shape) == 3 else (1,) * (3 - len(shape)) + shape
    if arr.shape != shape and arr.shape != shape[-2:]:
        raise ValueError(f"simulate: {name} has shape {arr.shape}; it must equal the target's "
                         f"shape {shape} or its last two axes {shape[-2:]}")
    return np.broadcast_to(arr.reshape((1,) * (3 - arr.ndim) + arr.shape), full)


def apply_limits(target: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """Clip ``[B, S, T]`` targets to ``±position_limit``, then scale bars above ``max_leverage``."""
    orders = np.clip(target, -config.position_limit, config.position_limit)
    if config.max_leverage is not None:
        gross = np.abs(orders).sum(axis=1, keepdims=True)                        # [B, 1, T]
        scale = np.minimum(1.0, config.max_leverage / np.maximum(gross, np.finfo(float).tiny))
        orders = orders * scale
    return orders


def delay(values: np.ndarray, bars: int, fill: float = 0.0) -> np.ndarray:
    """Shift ``[..., T]`` later by ``bars`` along time: ``out[..., t] = values[..., t - bars]``."""
    if bars == 0:
        return values
    out = np.full_like(values, fill)
    if bars < values.shape[-1]:
        out[..., bars:] = values[..., :-bars]
    return out


def _fill_with_cap(due: np.ndarray, room: np.ndarray, max_leverage: float | None) -> np.ndarray:
    """Volume-capped fills: ``[B, S, T]`` orders due, per-bar max |trade| ``room`` -> positions.

    The recursion ``x_t = clip(due_t, x_{t-1} - room_t, x_{t-1} + room_t)`` has no closed form
    (it is a rate limiter), so this loops over T, vectorised over ``[B, S]``.
    """
    due_tm = np.ascontiguousarray(np.moveaxis(due, -1, 0))                        # [T, B, S]
    room_tm = np.ascontiguousarray(np.moveaxis(room, -1, 0))                      # [T, B, S]
    out = np.empty_like(due_tm)
    prev = np.zeros(due_tm.shape[1:])                                             # [B, S] flat start
    for t in range(due_tm.shape[0]):
        want = due_tm[t] - prev
        # a fill that fits lands exactly on the order (no rounding residue to re-trade later)
        step = np.where(np.abs(want) <= room_tm[t], want, np.clip(want, -room_tm[t], room_tm[t]))
        pos = np.where(np.abs(want) <= room_tm[t], due_tm[t], prev + step)
        if max_leverage is not None:
            # reducing part: toward zero, at most down to flat; the rest adds exposure
            reduce = np.clip(step, np.minimum(0.0, -prev), np.maximum(0.0, -prev))   # [B, S]
            base = prev + reduce
            extra = step - reduce
            # |base + lam * extra| = |base| + lam * |extra| per symbol, so gross is linear in lam
            need = np.abs(extra).sum(axis=-1, keepdims=True)                          # [B, 1]
            slack = np.maximum(max_leverage - np.abs(base).sum(axis=-1, keepdims=True), 0.0)
            lam = np.where(need > slack, slack / np.where(need > 0, need, 1.0), 1.0)
            pos = np.where(lam >= 1.0, pos, base + lam * extra)
        out[t] = pos
        prev = pos
    return np.moveaxis(out, 0, -1)                                                # [B, S, T]


def simulate(target, returns, dollar_volume=None, config: SimulatorConfig | None = None) -> SimulationResult:
    """Execute target positions against a market with frictions (module docstring).

    Args:
        target: ``[T]``, ``[S, T]`` or ``[B, S, T]`` positions (fractions of ``capital``) decided at
            the close of each bar; numpy or torch, finite.
        returns: the return earned by holding the position of bar t (the next bar's return), the
            target's shape or ``[S, T]`` shared by a batch.
        dollar_volume: traded value (price * volume) of the bar a trade at t executes in, same
            shapes as ``returns``; required when ``config.needs_volume`` (impact or a volume cap).
        config: frictions; default `SimulatorConfig()`.

    Returns:
        `SimulationResult`, every array in the target's layout.

    Raises:
        ValueError: shapes disagree, values non-finite or negative volume, or volumes missing
            when the config needs them, or a trade on a zero-volume bar under an impact cost
            without a volume cap (its cost would be infinite).
    """
    cfg = config or SimulatorConfig()
    raw = _array(target, "target")
    shape = raw.shape
    tgt = raw.reshape((1,) * (3 - raw.ndim) + shape)                              # [B, S, T]
    ret = _market(returns, "returns", shape)
    if dollar_volume is None:
        if cfg.needs_volume:
            raise ValueError("simulate: dollar_volume is required with impact_bps > 0 or "
                             "max_participation set (SimulatorConfig); pass bar price * volume")
        dvol = None
    else:
        dvol = _market(dollar_volume, "dollar_volume", shape)
        if (dvol < 0).any():
            raise ValueError("simulate: dollar_volume must be >= 0")

    orders = apply_limits(tgt, cfg)                                               # [B, S, T]
    due = delay(orders, cfg.latency_bars)                                         # [B, S, T]
    if cfg.max_participation is None:
        positions = due
    else:
        room = cfg.max_participation * dvol / cfg.capital                         # [B, S, T] max |trade|
        positions = _fill_with_cap(due, room, cfg.max_leverage)
    before = delay(positions, 1)                                                  # position entering bar t
    trades = positions - before
    requested = due - before
    size = np.abs(trades)

    if dvol is None:
        participation = np.zeros_like(size)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            participation = np.where(size > 0, size * cfg.capital / dvol, 0.0)
        if cfg.impact_bps > 0 and np.isinf(participation).any():
            bad = tuple(int(i) for i in np.argwhere(np.isinf(participation))[0])
            raise ValueError(f"simulate: a trade on a zero-dollar-volume bar (index {bad}) has "
                             "infinite impact; set SimulatorConfig.max_participation")

    costs = {
        "fee": cfg.fee_bps * BPS * size,
        "fixed_fee": np.where(size > 0, cfg.fixed_fee / cfg.capital, 0.0),
        "spread": cfg.half_spread_bps * BPS * size,
        "impact": (cfg.impact_bps * BPS * np.power(participation, cfg.impact_exponent) * size
                   if cfg.impact_bps > 0 else np.zeros_like(size)),
        "borrow": cfg.borrow_bps * BPS / cfg.periods_per_year * np.maximum(-positions, 0.0),
    }
    gross = positions * ret
    net = gross - sum(costs.values())

    def back(a: np.ndarray) -> np.ndarray:                                        # [B, S, T] -> target layout
        return np.ascontiguousarray(np.broadcast_to(a, tgt.shape)).reshape(shape)

    return SimulationResult(
        orders=back(orders), positions=back(positions), trades=back(trades), requested=back(requested),
        participation=back(participation), gross_pnl=back(gross),
        costs={k: back(v) for k, v in costs.items()}, net_pnl=back(net), config=cfg)
