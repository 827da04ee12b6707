"""Restore a supervised checkpoint and turn a window frame into one prediction row per decision.

Dimension legend: ``N`` frame rows (symbols stacked, each a contiguous time-sorted block), ``F``
features, ``T`` context length, ``W`` decisions (windows predicted), ``B`` batch, ``H`` horizon,
``Q`` quantile levels.

A *decision* at bar ``t`` of a symbol uses the window of the ``T`` rows ending at ``t``
(inclusive): everything known after bar ``t`` closed, nothing later. Training windows end one bar
before their first target (`SlidingWindowDataset`); here there is no target, so the window may end
at the newest bar of the database. A window is used only when its ``T`` rows are all valid
(finite features and return) and belong to one symbol. Window selection is vectorised with a
cumulative count of invalid rows; windows are read through one strided view of the ``[N, F]``
array and gathered once per batch — no Python loop per window or per symbol.

The decision is the first horizon step of the head: ``position``, ``expected_return`` and the
sell/hold/buy probabilities. Heads without an action distribution (regression, quantile) get
probabilities derived from their position so that ``p_buy - p_sell == position`` as for the
policy head: ``p_buy = max(position, 0)``, ``p_sell = max(-position, 0)``,
``p_hold = 1 - |position|``. A quantile head adds one ``q_<level>`` column per level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from plusultra_core.errors import CheckpointError, ConfigError, DataValidationError

PREDICTION_COLUMNS = ("timestamp", "symbol", "p_sell", "p_hold", "p_buy", "position", "expected_return")
# sidecar keys without which the module cannot be rebuilt or fed
_REQUIRED_KEYS = ("architecture", "model_config", "feature_names", "context_length", "horizon")
STAGE = "predict_frame"


def quantile_column(level: float) -> str:
    """Column name of a quantile level: ``0.05 -> 'q_0.05'``."""
    return f"q_{float(level):g}"


def _head_config(side: dict, path: Path):
    from plusultra_core.config import from_dict
    from plusultra_core.heads import HeadConfig

    raw = side.get("head_config")
    if raw is None:
        raw = (side.get("config") or {}).get("head")
    if raw is None:
        raise CheckpointError(f"{path}: sidecar has no head_config (nor config.head); cannot rebuild the head")
    return from_dict(HeadConfig, raw, f"{path}.json:head_config")


def _describe(diff: dict[str, list], limit: int = 6) -> str:
    parts = []
    for kind, keys in diff.items():
        if keys:
            more = f", ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
            parts.append(f"{len(keys)} {kind.replace('_', '-')} [{', '.join(keys[:limit])}{more}]")
    return "; ".join(parts)


def load_supervised(path: str | Path):
    """``(module in eval mode, sidecar)`` of a supervised checkpoint written by `run_training`.

    The module is rebuilt from the sidecar (architecture, backbone config, head config, feature
    count, horizon) and the weights are loaded with ``weights_only=True``. Raises `CheckpointError`
    naming the path when the files are missing or corrupt, the sidecar lacks what is needed to
    rebuild the model (architecture, model config, feature list, context length, horizon, head),
    it is a pretraining checkpoint, the weights do not fit the rebuilt model, or its feature names
    do not hash, in order, to its ``feature_hash`` (`check_feature_order`).
    """
    from plusultra_core.config import from_dict
    from plusultra_core.losses import LossConfig
    from plusultra_core.models.registry import build_config
    from plusultra_core.training.checkpoints import check_feature_order, load_checkpoint
    from plusultra_core.training.config import OptimConfig
    from plusultra_core.training.supervised_module import SupervisedTradingModule, compare_state

    path = Path(path)
    state, side = load_checkpoint(path)
    missing = [k for k in _REQUIRED_KEYS if not side.get(k)]
    if missing:
        raise CheckpointError(f"{path}: sidecar lacks {', '.join(missing)}; cannot rebuild the model "
                              "(write checkpoints with plusultra_core.training.runner)")
    kind = str(side.get("kind", "supervised"))
    if kind.startswith("pretrain"):
        raise CheckpointError(f"{path}: is a pretraining checkpoint (kind '{kind}'); inference needs a "
                              "supervised one (plusultra train)")
    names = side["feature_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: sidecar feature_names must be a list of names, got {names!r}")
    try:
        model_cfg = build_config(side["architecture"], side["model_config"], f"{path}.json:model_config")
        head_cfg = _head_config(side, path)
        loss_cfg = from_dict(LossConfig, side.get("loss_config") or {}, f"{path}.json:loss_config")
        module = SupervisedTradingModule(model_cfg, side["architecture"], len(names), int(side["horizon"]),
                                         head_cfg, loss_cfg, OptimConfig())
    except ConfigError as exc:
        raise CheckpointError(f"{path}: sidecar does not describe a buildable model: {exc}") from exc
    diff = compare_state(module.state_dict(), state)
    if any(diff.values()):
        raise CheckpointError(f"{path}: weights do not fit the {side['architecture']} model described by "
                              f"its sidecar: {_describe(diff)}")
    check_feature_order(names, side, path)  # same shapes for any order: only the hash can tell
    module.load_state_dict(state)
    module.eval()
    return module, side


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in (symbol, timestamp) order; unchanged (no copy) when it already is."""
    ts = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    codes = pd.factorize(frame["symbol"], sort=True)[0]
    key_ok = (np.all(codes[1:] >= codes[:-1]) and
              np.all((codes[1:] > codes[:-1]) | (ts[1:] > ts[:-1]))) if len(frame) > 1 else True
    if key_ok:
        return frame
    order = np.lexsort((ts, codes))
    out = frame.iloc[order].reset_index(drop=True)
    ts, codes = ts[order], codes[order]
    dup = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])
    if dup.any():
        k = int(np.flatnonzero(dup)[0]) + 1
        raise DataValidationError(f"{STAGE}: duplicate (symbol, timestamp) row {out['symbol'].iloc[k]} "
                                  f"{out['timestamp'].iloc[k]}", table=STAGE, column="timestamp",
                                  check="unique_keys")
    return out


def decision_rows(frame: pd.DataFrame, feature_names: Sequence[str], T: int, start, end):
    """``(features [N, F] float32, rows [W] int64)``: rows ``t`` whose window ``[t-T+1, t]`` is clean,
    inside one symbol and with ``start <= timestamp[t] <= end``."""
    missing = [c for c in ("timestamp", "symbol", *feature_names) if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{STAGE}: window frame lacks columns {missing}", table=STAGE,
                                  column=missing[0], check="columns_present")
    n = len(frame)
    features = np.empty((n, len(feature_names)), dtype=np.float32)                  # [N, F]
    ok_row = (frame["valid"].to_numpy(dtype=bool) if "valid" in frame.columns else np.ones(n, bool)).copy()
    for j, name in enumerate(feature_names):  # one pass per feature column, vectorised over rows
        col = frame[name].to_numpy(dtype=np.float32, na_value=np.nan)
        finite = np.isfinite(col)
        ok_row &= finite
        features[:, j] = np.where(finite, col, np.float32(0.0))
    if n < T:
        return features, np.empty(0, np.int64)
    bad = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(~ok_row, out=bad[1:])                                                 # [N+1] invalid rows before i
    codes = pd.factorize(frame["symbol"], sort=False)[0]
    last = np.arange(T - 1, n)                                                      # candidate window ends
    ok = (bad[last + 1] == bad[last + 1 - T]) & (codes[last] == codes[last + 1 - T])
    ts = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").to_numpy()[last]
    if start is not None:
        ok &= ts >= np.datetime64(pd.Timestamp(start), "ns")
    if end is not None:
        ok &= ts <= np.datetime64(_inclusive_end(end), "ns")
    return features, last[ok].astype(np.int64)


def _inclusive_end(end) -> pd.Timestamp:
    """A date-only ``end`` covers its whole day."""
    ts = pd.Timestamp(end)
    return ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns") if ts == ts.normalize() else ts


def zscore_windows_(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-window, per-feature z-score over time in place, as `SlidingWindowDataset` does."""
    std, mean = torch.std_mean(x, dim=-2, keepdim=True, correction=0)              # [B, 1, F]
    return x.sub_(mean).div_(std.add_(eps))


def predict_frame(module, frame: pd.DataFrame, feature_names: Sequence[str], *, context_length: int,
                  start=None, end=None, batch_size: int = 1024, zscore: bool = False,
                  zscore_eps: float = 1e-5) -> pd.DataFrame:
    """Predictions for every symbol × decision time in ``[start, end]`` with a valid window.

    Args:
        module: a `SupervisedTradingModule` (put in eval mode here).
        frame: window frame (`build_window_frame` output: ``timestamp``, ``symbol``, features,
            ``valid``); sorted here if it is not in (symbol, timestamp) order.
        feature_names: model inputs in the checkpoint's order.
        context_length: ``T``, bars per window; the window of decision ``t`` ends at ``t``.
        start, end: inclusive bounds on the decision time (None: unbounded; a date-only ``end``
            covers the day).
        batch_size: windows per forward pass.
        zscore: per-window z-score the inputs (the checkpoint's ``zscore`` setting).

    Returns:
        DataFrame ``timestamp, symbol, p_sell, p_hold, p_buy, position, expected_return``
        (+ ``q_<level>`` per quantile level for a quantile head), float64 values, sorted by
        (timestamp, symbol). Deterministic: eval mode, ``torch.inference_mode``.
    """
    T = int(context_length)
    if T < 1 or batch_size < 1:
        raise ConfigError(f"{STAGE}: context_length and batch_size must be >= 1, got {T}, {batch_size}")
    feature_names = list(feature_names)
    frame = sorted_frame(frame)
    features, rows = decision_rows(frame, feature_names, T, start, end)
    levels = tuple(getattr(module.head, "levels", ()) or ())
    q_cols = [quantile_column(q) for q in levels]
    cols: dict[str, list[np.ndarray]] = {c: [] for c in ("probs", "position", "expected_return", "quantiles")}
    if len(rows):
        # [N-T+1, F, T] -> [N-T+1, T, F]: a view; window of decision row t is index t-T+1
        windows = np.lib.stride_tricks.sliding_window_view(features, T, axis=0).transpose(0, 2, 1)
        module.eval()
        with torch.inference_mode():
            for lo in range(0, len(rows), batch_size):  # one iteration per batch, not per window
                x = torch.from_numpy(windows[rows[lo:lo + batch_size] - (T - 1)])  # [B, T, F] one gather
                if zscore:
                    zscore_windows_(x, zscore_eps)
                out, _ = module(x)
                cols["position"].append(out.position[:, 0].double().numpy())           # [B]
                cols["expected_return"].append(out.expected_return[:, 0].double().numpy())
                if out.probs is not None:
                    cols["probs"].append(out.probs[:, 0, :].double().numpy())        # [B, 3] sell/hold/buy
                if out.quantiles is not None:
                    cols["quantiles"].append(out.quantiles[:, 0, :].double().numpy())  # [B, Q]
    position = np.concatenate(cols["position"]) if cols["position"] else np.zeros(0)
    expected = np.concatenate(cols["expected_return"]) if cols["expected_return"] else np.zeros(0)
    if cols["probs"]:
        probs = np.concatenate(cols["probs"])
    else:
        # heads without an action distribution: the distribution whose p_buy - p_sell is the position
        probs = np.stack([np.maximum(-position, 0.0), 1.0 - np.abs(position), np.maximum(position, 0.0)], axis=1)
    result: dict[str, Any] = {
        "timestamp": pd.DatetimeIndex(frame["timestamp"].to_numpy()[rows]).as_unit("ns"),
        "symbol": frame["symbol"].to_numpy()[rows].astype(str),
        "p_sell": probs[:, 0], "p_hold": probs[:, 1], "p_buy": probs[:, 2],
        "position": position, "expected_return": expected,
    }
    if q_cols:
        quant = np.concatenate(cols["quantiles"]) if cols["quantiles"] else np.zeros((0, len(q_cols)))
        result.update({c: quant[:, k] for k, c in enumerate(q_cols)})
    out = pd.DataFrame(result)
    # rows are in (symbol, time) order with symbols sorted: a stable sort by time gives (time, symbol)
    order = np.argsort(out["timestamp"].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True)
