"""`MarketNNPlusUltraAgent`: a supervised checkpoint applied to a SQLite market database.

``predict(db_path, start, end)`` does, in order: one bulk `SQLiteMarketDataset.load_panel` over
``[start - padding, end]`` (validated), the checkpoint's features (`FeaturePipeline` with the
sidecar's feature list, plus the return stream), `build_window_frame`, `predict_frame` for the
decision times in ``[start, end]``, and `risk_analytics` for each decision day (one vectorised
call per day, none per symbol).

Padding: a decision at ``start`` needs ``context_length`` rows of window, each of which needs
``max_lookback`` rows of raw history for its features, and the risk analytics need ``lookback``
days of returns: ``max(max_lookback + context_length, lookback + 1)`` rows. Exponential and Wilder
features declare as lookback the warm-up after which earlier history weighs < 1e-8, so these
rows reproduce the float32 values the window tensors hold (trained on) although those were
computed from a longer history (tests/pipeline/test_train_serve_parity.py). The calendar padding
is that many *rows* × 1.6 calendar days (5 business days
are 7 calendar days, = 1.4, plus holidays) + 10 days: generous, assuming daily bars.

``data_version`` is a content hash of exactly the rows read: sha256 of the validated panel (index,
column names and every value, via ``pandas.util.hash_pandas_object``), market-wide as-of columns
included. Editing, adding or removing any row the prediction could have seen changes it; changes
outside the read range do not, and its cost is proportional to the rows read, not to the file
(``partition_fingerprints`` would hash the whole database every day). It is not comparable with
a training checkpoint's ``data_version``, which hashes the store partitions it trained on.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from plusultra_core.errors import CheckpointError, ConfigError
from plusultra_core.timestamps import naive_utc

_ROWS_TO_DAYS = 1.6
_EXTRA_DAYS = 10


@dataclass
class AgentResult:
    """What `MarketNNPlusUltraAgent.predict` returns.

    frame:        one row per symbol × decision time: ``timestamp, symbol, p_sell, p_hold, p_buy,
                  position, expected_return, [q_<level>...], weight, predicted_volatility,
                  vol_source, risk_contribution, checkpoint, checkpoint_id``.
    risk:         decision day (``YYYY-MM-DD``) -> portfolio risk dict (`risk_analytics`).
    checkpoint:   path of the checkpoint used.
    data_version: content hash of the database rows read (see the module docstring).
    read_range:   first and last calendar day read (history padding included).
    """

    frame: pd.DataFrame
    risk: dict
    checkpoint: str
    data_version: str
    read_range: tuple[str, str] = field(default=("", ""))


def file_digest(path: str | Path, n: int = 16) -> str:
    """Short sha256 of a file's bytes: the checkpoint's identity, whatever its path."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def data_version(panel: pd.DataFrame) -> str:
    """sha256 (16 hex) of a panel's index, column names and values (see the module docstring)."""
    h = hashlib.sha256("\x1f".join(map(str, panel.columns)).encode())
    h.update(pd.util.hash_pandas_object(panel, index=True).to_numpy().tobytes())  # [N] uint64 row hashes
    return h.hexdigest()[:16]


def _day(value, what: str) -> pd.Timestamp:
    return naive_utc(value, what, expected="a date (expected YYYY-MM-DD)")


class MarketNNPlusUltraAgent:
    """A restored supervised model plus what it needs to run on raw market data.

    Args:
        module: `SupervisedTradingModule` in eval mode.
        sidecar: the checkpoint's JSON sidecar.
        checkpoint: path of the checkpoint (recorded on every output row).
        risk_confidence, risk_lookback: see `risk_analytics`.
        batch_size: windows per forward pass.
    """

    def __init__(self, module, sidecar: dict, checkpoint: str | Path, *, risk_confidence: float = 0.99,
                 risk_lookback: int = 250, batch_size: int = 1024, checkpoint_id: str | None = None):
        from plusultra_core.features import FeaturePipeline
        from plusultra_core.training.checkpoints import check_feature_order

        check_feature_order(sidecar["feature_names"], sidecar, checkpoint)  # the order fed below
        self.module = module
        self.sidecar = sidecar
        self.checkpoint = str(checkpoint)
        self.checkpoint_id = checkpoint_id or (file_digest(checkpoint) if Path(checkpoint).is_file()
                                               else Path(checkpoint).stem)
        self.feature_names: list[str] = list(sidecar["feature_names"])
        self.context_length = int(sidecar["context_length"])
        self.return_column = str(sidecar.get("return_column") or "ret_1d")
        self.zscore = bool(sidecar.get("zscore", False))
        self.risk_confidence = risk_confidence
        self.risk_lookback = risk_lookback
        self.batch_size = batch_size
        names = self.feature_names + ([] if self.return_column in self.feature_names else [self.return_column])
        try:
            self.pipeline = FeaturePipeline(names=names)
        except ConfigError as exc:
            raise CheckpointError(f"{self.checkpoint}: its features are not all registered here: {exc}") from exc

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kw) -> "MarketNNPlusUltraAgent":
        """Restore the agent from a supervised checkpoint (`load_supervised` errors propagate)."""
        from plusultra_core.inference.predict import load_supervised

        module, sidecar = load_supervised(path)
        return cls(module, sidecar, path, **kw)

    @classmethod
    def from_checkpoints(cls, paths, label: str | Path | None = None, **kw) -> "MarketNNPlusUltraAgent":
        """The seed ensemble of several supervised checkpoints (`SeedEnsemble`: mean decision).

        Every member must read the same inputs (feature list, context length, z-score, return
        column); ``label`` names the ensemble on output rows (default: the first path's folder's
        parent, i.e. the cutoff directory). One path gives a plain single-model agent.
        """
        import hashlib

        from plusultra_core.inference.ensemble import SeedEnsemble
        from plusultra_core.inference.predict import load_supervised

        paths = [Path(p) for p in paths]
        if not paths:
            raise CheckpointError("no checkpoints given for the ensemble")
        if len(paths) == 1:
            return cls.from_checkpoint(paths[0], **kw)
        loaded = [load_supervised(p) for p in paths]
        first = loaded[0][1]
        for path, (_, side) in zip(paths[1:], loaded[1:]):
            for key in ("feature_names", "context_length", "zscore", "return_column"):
                if side.get(key) != first.get(key):
                    raise CheckpointError(f"{path}: {key} {side.get(key)!r} differs from {paths[0]}'s "
                                          f"{first.get(key)!r}; ensemble members must read the same inputs")
        digest = hashlib.sha256("".join(file_digest(p) for p in paths).encode()).hexdigest()[:16]
        label = label if label is not None else paths[0].parent.parent
        return cls(SeedEnsemble([m for m, _ in loaded]), first, label, checkpoint_id=digest, **kw)

    @property
    def history_rows(self) -> int:
        """Rows of history needed before the first decision (features, window, risk lookback)."""
        return max(self.pipeline.max_lookback + self.context_length, self.risk_lookback + 1)

    def read_start(self, start) -> pd.Timestamp:
        """First calendar day read for decisions from ``start`` (see the module docstring)."""
        days = math.ceil(self.history_rows * _ROWS_TO_DAYS) + _EXTRA_DAYS
        return _day(start, "start").normalize() - pd.Timedelta(days=days)

    def window_frame(self, dataset, start, end, symbols=None) -> pd.DataFrame:
        """The window frame the predictions are made from: bulk read, features, `build_window_frame`."""
        return self._read(dataset, start, end, symbols)[1]

    def _read(self, dataset, start, end, symbols=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(panel, window frame)``: one validated bulk read with the history padding.

        As in the feature stage, the universe is every tradable symbol (``dataset.symbols()``) and
        cross-sectional features rank across it: when ``symbols`` is a subset, the universe's bars
        over the same range are read too, so a symbol's ranks do not depend on what else was asked.
        """
        from plusultra_core.windows import build_window_frame

        symbols = [symbols] if isinstance(symbols, str) else symbols
        universe_symbols = dataset.symbols()
        first = self.read_start(start)
        panel = dataset.load_panel(symbols=universe_symbols if symbols is None else symbols, start=first, end=end)
        universe = None
        if symbols is not None and self.pipeline.cross_sectional and set(symbols) != set(universe_symbols):
            universe = dataset.load_panel(symbols=universe_symbols, start=first, end=end)
        features = self.pipeline.transform_panel(panel, universe=universe)
        lacking = {n: m for n, m in self.pipeline.skipped.items() if n in self.feature_names}
        if lacking or self.return_column not in features.columns:
            detail = "; ".join(f"{n} needs {', '.join(m)}" for n, m in lacking.items()) or self.return_column
            raise CheckpointError(f"{self.checkpoint}: the database {dataset.path} lacks inputs of the "
                                  f"checkpoint's features: {detail}")
        return panel, build_window_frame(features, self.feature_names, return_column=self.return_column)

    def predict(self, db_path: str | Path, start, end=None, symbols: Iterable[str] | None = None) -> AgentResult:
        """Predictions and risk for every decision day in ``[start, end]`` (``end`` defaults to ``start``).

        Symbols default to every symbol with bars (cross-sectional features see the same universe
        as in training only if it is the same). Days without bars simply have no rows; an empty
        frame means no symbol had a complete valid window in the range.
        """
        from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

        start_ts, end_ts = self.decision_range(start, end)
        symbols = [symbols] if isinstance(symbols, str) else (list(symbols) if symbols is not None else None)
        with SQLiteMarketDataset(db_path) as dataset:
            panel, frame = self._read(dataset, start_ts, end_ts, symbols)
        version = data_version(panel)
        del panel
        return self.predict_window_frame(frame, start_ts, end_ts, version)

    def decision_range(self, start, end=None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(start, end)`` as timestamps (``end`` defaults to ``start``); `ConfigError` if reversed."""
        start_ts = _day(start, "start")
        end_ts = _day(end, "end") if end is not None else start_ts
        if end_ts < start_ts:
            raise ConfigError(f"end {end_ts.date()} is before start {start_ts.date()}")
        return start_ts, end_ts

    def read_window_frame(self, dataset, start, end, symbols=None) -> tuple[pd.DataFrame, str]:
        """``(window frame, data version of the rows read)``: what `predict` reads, kept for reuse
        (a service predicting several subsets of one day reads the universe once)."""
        panel, frame = self._read(dataset, start, end, symbols)
        return frame, data_version(panel)

    def predict_window_frame(self, frame: pd.DataFrame, start, end, version: str) -> AgentResult:
        """`predict` after the read: predictions for the decision times in ``[start, end]`` of the
        symbols in ``frame`` (a window frame from `read_window_frame` or `window_frame`, possibly
        restricted to some symbols), then the risk analytics of each decision day over them."""
        from plusultra_core.inference.predict import predict_frame
        from plusultra_core.inference.risk import risk_analytics

        start_ts, end_ts = self.decision_range(start, end)
        preds = predict_frame(self.module, frame, self.feature_names, context_length=self.context_length,
                              start=start_ts, end=end_ts, batch_size=self.batch_size, zscore=self.zscore)
        # [days, symbols] wide returns once; each day's risk reads only rows up to that day
        returns = frame.pivot(index="timestamp", columns="symbol", values=self.return_column)
        parts, risk = [], {}
        for day, rows in preds.groupby("timestamp", sort=True):  # one vectorised call per decision day
            result = risk_analytics(rows, returns, confidence=self.risk_confidence, lookback=self.risk_lookback)
            risk[result["portfolio"]["timestamp"]] = result["portfolio"]
            parts.append(result["per_symbol"].drop(columns="symbol").set_index(rows.index))
        extra = (pd.concat(parts) if parts else
                 pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                               (("weight", float), ("predicted_volatility", float), ("vol_source", str),
                                ("risk_contribution", float))}))
        out = pd.concat([preds, extra.loc[preds.index] if len(preds) else extra], axis=1)
        out["checkpoint"] = self.checkpoint
        out["checkpoint_id"] = self.checkpoint_id
        read = (str(self.read_start(start_ts).date()), str(end_ts.date()))
        return AgentResult(out, risk, self.checkpoint, version, read)

