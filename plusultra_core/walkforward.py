"""Walk-forward folds: what a model trained at a cutoff may see, and what it is judged on.

Fold k has cutoff ``C_k`` and is evaluated on ``[C_k, C_{k+1})``. Its models see, per symbol,
the bars strictly before ``C_k`` minus the last ``purge_bars`` of them (so no target, which looks
``horizon`` bars ahead, reaches into the evaluation period), and inside that:

- **validation** (early stopping): the most recent ``validation_months`` before ``C_k``. The fit
  uses windows whose every bar, targets included, is at or before ``fit_end = C_k -
  validation_months``; validation windows start ``purge_bars`` bars after ``fit_end`` (the
  embargo `plusultra_core.windows.time_split` enforces), so they overlap no fitted target.
- **fit**: everything before that -- expanding from the first bar (default), or the last
  ``rolling_years`` only (``window: rolling``). Optionally recent blocks are sampled more often
  (``recency_halflife_years``, see `TimeContiguousBatchSampler`).

There is no inner "test" split: the fold after the cutoff is the test. Moving the cutoff by one
month moves ``fit_end`` by one month, so monthly retraining really learns from the newest data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError

WINDOWS = ("expanding", "rolling")


@dataclass(frozen=True)
class CutoffWindow:
    """How a cutoff's models split the history before it (see the module docstring)."""

    purge_bars: int = 10                     # bars before the cutoff no model of it sees (>= horizon)
    validation_months: int = 12              # early-stopping slice: the last months before the cutoff
    window: str = "expanding"                # expanding | rolling
    rolling_years: int | None = None         # rolling: fit on the last K years only
    recency_halflife_years: float | None = None  # sample blocks with weight 0.5 ** (age / halflife)

    def __post_init__(self):
        if isinstance(self.purge_bars, bool) or not isinstance(self.purge_bars, int) or self.purge_bars < 0:
            raise ConfigError(f"training.purge_bars must be an integer >= 0, got {self.purge_bars!r}")
        if (isinstance(self.validation_months, bool) or not isinstance(self.validation_months, int)
                or self.validation_months < 1):
            raise ConfigError(f"training.validation_months must be an integer >= 1, got {self.validation_months!r}")
        if self.window not in WINDOWS:
            raise ConfigError(f"training.window '{self.window}' is not one of {', '.join(WINDOWS)}")
        if self.window == "rolling":
            if not isinstance(self.rolling_years, int) or isinstance(self.rolling_years, bool) or self.rolling_years < 1:
                raise ConfigError(f"training.rolling_years must be an integer >= 1 when training.window is "
                                  f"rolling, got {self.rolling_years!r}")
        elif self.rolling_years is not None:
            raise ConfigError("training.rolling_years is set but training.window is 'expanding'; "
                              "set window: rolling or remove rolling_years")
        if self.recency_halflife_years is not None and not (
                isinstance(self.recency_halflife_years, (int, float)) and self.recency_halflife_years > 0):
            raise ConfigError(f"training.recency_halflife_years must be > 0 or null, got {self.recency_halflife_years!r}")


@dataclass(frozen=True)
class CutoffSplit:
    """Where one cutoff's data is cut: ``fit_end`` is the last bar a fitted window may touch."""

    cutoff: pd.Timestamp
    fit_start: pd.Timestamp | None   # rolling window start (None: expanding)
    fit_end: pd.Timestamp            # time_split's train_end
    data_end: pd.Timestamp | None    # last bar any model of the cutoff sees (after the purge)

    def lineage(self) -> dict:
        """JSON-able ranges for sidecars and Dagster metadata."""
        day = lambda t: str(pd.Timestamp(t).date()) if t is not None else None  # noqa: E731
        return {"fit_range": [day(self.fit_start), day(self.fit_end)],
                "validation_range": [day(self.fit_end + pd.Timedelta(days=1)), day(self.data_end)]}


def training_frame(frame: pd.DataFrame, cutoff, purge_bars: int, fit_start=None) -> pd.DataFrame:
    """Rows of a window frame (sorted by symbol, timestamp) usable for training at ``cutoff``.

    Keeps ``fit_start <= timestamp < cutoff`` and then drops each symbol's last ``purge_bars``
    rows. Vectorised: one reverse cumulative count per symbol via ``groupby().cumcount``.
    """
    ts = pd.to_datetime(frame["timestamp"])
    keep = ts < pd.Timestamp(cutoff)
    if fit_start is not None:
        keep &= ts >= pd.Timestamp(fit_start)
    before = frame[keep.to_numpy()]
    if purge_bars <= 0 or before.empty:
        return before.reset_index(drop=True)
    from_end = before.groupby("symbol", sort=False).cumcount(ascending=False).to_numpy()
    return before[from_end >= purge_bars].reset_index(drop=True)


def cutoff_split(cutoff, window: CutoffWindow, frame: pd.DataFrame | None = None) -> CutoffSplit:
    """The fit / validation cut of ``cutoff`` (``frame``, already purged, gives ``data_end``)."""
    cutoff = pd.Timestamp(cutoff)
    fit_end = cutoff - pd.DateOffset(months=window.validation_months) - pd.Timedelta(days=1)
    fit_start = cutoff - pd.DateOffset(years=window.rolling_years) if window.window == "rolling" else None
    data_end = last_train_time(frame) if frame is not None else None
    return CutoffSplit(cutoff, fit_start, pd.Timestamp(fit_end), data_end)


def last_train_time(frame: pd.DataFrame) -> pd.Timestamp | None:
    """Latest timestamp in a training frame (for lineage and the no-overlap assertion)."""
    if frame.empty:
        return None
    return pd.Timestamp(np.max(pd.to_datetime(frame["timestamp"]).to_numpy()))


def annotate_sidecar(checkpoint_path, fields: dict) -> dict:
    """Merge lineage ``fields`` into a checkpoint's JSON sidecar (atomic replace); return it.

    The sidecar is checked against its weights first (`read_sidecar`) and keeps their hash, so an
    annotated pair loads like the original.
    """
    import json

    from plusultra_core import atomic
    from plusultra_core.training.checkpoints import read_sidecar, sidecar_path

    side = read_sidecar(checkpoint_path)
    side.update(fields)
    atomic.write_file(sidecar_path(checkpoint_path), json.dumps(side, indent=2, sort_keys=True, default=str))
    return side
