"""The vectorised trading environment: every (symbol, bar) decision of a window frame at once.

Dimension legend: ``S`` symbols, ``T`` grid bars (the frame's union timestamps), ``F`` features,
``C`` context length, ``D`` model width, ``W`` decisions with a clean window, ``B`` segments.

A decision at bar t of a symbol sees the window of the ``C`` frame rows ending at t (inclusive)
-- exactly what `plusultra_core.inference.predict.predict_frame` feeds the served model (the same
`decision_rows` selection and per-window z-score) -- and its reward is realised by the *next*
bar's return (`plusultra_core.simulation.market_arrays` aligns it), so nothing the agent sees at
t is later than t. Bars without a clean window are forced flat and carry no gradient.

With a frozen backbone the first horizon step's embedding ``h[s, t] : [D]`` of every clean
window is computed once (`embed_all`); the policy head and the value head then run on
``[..., D]`` tensors, so a rollout over all symbols and bars is one batched head call and one
`simulate` call -- no Python loop per step or per symbol. A fine-tuned backbone re-embeds the
windows it needs (`MarketEnv.windows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.simulation import SimulationResult, SimulatorConfig, market_arrays, simulate

__all__ = ["MarketEnv", "build_env"]


@dataclass
class MarketEnv:
    """Windows, market and frictions of one training frame on the ``[S, T]`` grid.

    symbols:       [S] names.
    timestamps:    [T] decision times.
    features:      [N, F] float32 frame rows (symbol-major, time-sorted), windows index it.
    window_end:    [S, T] int64 row index of the window's last row, -1 where no clean window.
    returns:       [S, T] next-bar return earned by the position decided at t (0 where unknown).
    dollar_volume: [S, T] bar dollar volume, or None (frame without close/volume).
    context_length, zscore, zscore_eps: how windows are cut and normalised (the checkpoint's).
    simulator:     the frictions rewards and evaluations are computed with.
    """

    symbols: np.ndarray
    timestamps: np.ndarray
    features: np.ndarray
    window_end: np.ndarray
    returns: np.ndarray
    dollar_volume: np.ndarray | None
    context_length: int
    zscore: bool
    simulator: SimulatorConfig
    zscore_eps: float = 1e-5

    @property
    def acting(self) -> np.ndarray:
        """[S, T] bool: a clean window exists, so the agent decides (elsewhere it is flat)."""
        return self.window_end >= 0

    def windows(self, s_idx: torch.Tensor, t_idx: torch.Tensor) -> torch.Tensor:
        """``[K]`` acting (symbol, bar) indices -> model inputs ``[K, C, F]`` (one gather, no loop)."""
        from plusultra_core.inference.predict import zscore_windows_

        ends = torch.as_tensor(self.window_end[s_idx.numpy(), t_idx.numpy()])              # [K]
        offsets = torch.arange(-self.context_length + 1, 1)                                # [C]
        x = torch.from_numpy(self.features)[ends[:, None] + offsets[None, :]]              # [K, C, F]
        return zscore_windows_(x, self.zscore_eps) if self.zscore else x

    def simulate(self, positions, *, times: np.ndarray | None = None) -> SimulationResult:
        """Execute ``[S, T']`` or ``[B, S, T']`` positions on bars ``times`` ([T'] or [B, T'] grid
        indices; None = every bar) with the env's frictions."""
        if times is None:
            ret, dvol = self.returns, self.dollar_volume
        else:
            times = np.asarray(times)
            # [S, T'] or [S, B, T'] -> [B, S, T'] so each segment is one batch element
            ret = np.moveaxis(self.returns[:, times], 0, -2) if times.ndim == 2 else self.returns[:, times]
            dvol = None if self.dollar_volume is None else (
                np.moveaxis(self.dollar_volume[:, times], 0, -2) if times.ndim == 2 else self.dollar_volume[:, times])
        return simulate(positions, ret, dvol, self.simulator)


def build_env(frame: pd.DataFrame, feature_names: Sequence[str], *, context_length: int, zscore: bool,
              simulator: SimulatorConfig, zscore_eps: float = 1e-5) -> MarketEnv:
    """The `MarketEnv` of a window frame (``timestamp``, ``symbol``, features, ``ret_1d``,
    ``valid``; ``close`` and ``volume`` when the simulator prices impact or a volume cap).

    Raises:
        ConfigError: the simulator needs bar volumes the frame does not have.
        DataValidationError: no clean window at all.
    """
    from plusultra_core.inference.predict import decision_rows, sorted_frame

    frame = sorted_frame(frame)
    market = market_arrays(frame)
    if simulator.needs_volume and market.dollar_volume is None:
        raise ConfigError("RLConfig.simulator prices impact (impact_bps > 0) or a volume cap "
                          "(max_participation), but the frame has no close/volume columns; set "
                          "simulator.impact_bps: 0 and simulator.max_participation: null")
    features, rows = decision_rows(frame, list(feature_names), int(context_length), None, None)
    if not len(rows):
        raise DataValidationError(f"rl env: no clean window of {context_length} bars in the frame",
                                  table="rl_env", check="windows")
    s = np.searchsorted(market.symbols.astype(str), frame["symbol"].to_numpy().astype(str)[rows])
    t = np.searchsorted(market.timestamps, pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").to_numpy()[rows])
    window_end = np.full(market.returns.shape, -1, dtype=np.int64)                          # [S, T]
    window_end[s, t] = rows
    return MarketEnv(symbols=market.symbols, timestamps=market.timestamps, features=features,
                     window_end=window_end, returns=market.returns, dollar_volume=market.dollar_volume,
                     context_length=int(context_length), zscore=bool(zscore), simulator=simulator,
                     zscore_eps=zscore_eps)


@torch.no_grad()
def embed_all(backbone, env: MarketEnv, batch: int = 1024) -> torch.Tensor:
    """``[S, T, D]`` first-horizon-step embeddings of every acting (symbol, bar); zeros elsewhere."""
    s_idx, t_idx = (torch.from_numpy(a) for a in np.nonzero(env.acting))                  # [W] each
    parts = []
    for lo in range(0, len(s_idx), batch):  # one iteration per batch of windows
        out = backbone(env.windows(s_idx[lo:lo + batch], t_idx[lo:lo + batch]))
        parts.append(out.horizon[:, 0].float())                                          # [b, D]
    flat = torch.cat(parts)                                                              # [W, D]
    emb = flat.new_zeros((*env.acting.shape, flat.shape[-1]))                            # [S, T, D]
    emb[s_idx, t_idx] = flat
    return emb
