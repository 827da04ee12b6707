"""Training progress in the Dagster run: one log line per epoch, then metadata the Plots tab charts.

`epoch_logger` builds the core `EpochMetricsCallback` for one cutoff and seed, writing a
``context.log.info`` line as each epoch ends, so a 10-minute fit shows progress in the run's
event log. `epoch_metadata` turns the finished callbacks of a cutoff's seeds into metadata: at
each seed's best epoch (the weights the runner restores), seed means as floats rounded for display
(returns in percent), plus the whole per-seed, per-epoch history as a table. The validation slice
lies before the cutoff and picks the epoch, so its Sharpe is named in-sample, never out-of-sample.

A checkpoint asset's seed fit and seed loop (``cutoff_training.py``: `stage_fit`, `train_cutoff`)
use it as::

    watch = epoch_logger(context, cutoff, seed, cfg.trainer)            # in each seed's fit
    info = run(cfg, frame=data.frame, feature_names=data.feature_names, callbacks=[watch])
    MaterializeResult(metadata={**_metadata(...), **epoch_metadata(watches_by_seed)})  # after the loop
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, MetadataValue

from plusultra_pipeline.metadata import table

if TYPE_CHECKING:  # torch + Lightning cost ~5 s to import: a training step pays it, not loading the definitions
    from plusultra_core.training.config import TrainerConfig
    from plusultra_core.training.epoch_metrics import EpochMetricsCallback

# metric names (after the "val/" / "train/" stage) that are returns: shown in percent
RETURN_METRICS = ("max_drawdown", "mean_pnl", "annual_return")
# headline metadata besides the monitored metric; validation metrics say which period they measure
HEADLINES = {"val/sharpe": "validation_sharpe (in-sample period)",
             "val/ic": "validation_ic (in-sample period)",
             "val/max_drawdown": "validation_max_drawdown % (in-sample period)",
             "train/loss": "train/loss"}
SIGNIFICANT_DIGITS = 6


def is_return(name: str) -> bool:
    """Whether metric ``name`` (``val/max_drawdown``, ``mean_pnl``) is a return, shown in percent."""
    return name.rsplit("/", 1)[-1] in RETURN_METRICS


def _scaled(name: str, value: float) -> float:
    return float(value) * (100.0 if is_return(name) else 1.0)


def display_value(name: str, value: float) -> float:
    """``value`` as shown in metadata: in percent when ``name`` is a return, 6 significant digits."""
    return float(f"{_scaled(name, value):.{SIGNIFICANT_DIGITS}g}")


def _ordered(names: Iterable[str], monitor: str) -> list[str]:
    """The monitored metric first, then validation, then training metrics, each alphabetical."""
    rank = {"val": 1, "train": 2}
    return sorted(set(names), key=lambda n: (n != monitor, rank.get(n.split("/", 1)[0], 3), n))


def epoch_line(cutoff: str, seed: int, epoch: int, metrics: Mapping[str, float], monitor: str,
               best: bool) -> str:
    """``cutoff C seed s epoch e: val/loss 0.1234, val/sharpe 1.5, ..., train/loss 0.5 (best so far)``:
    the monitored metric and the `HEADLINES` ones (returns in percent); the rest is in the table."""
    shown = [n for n in dict.fromkeys((monitor, *HEADLINES)) if n in metrics]
    text = ", ".join(f"{name} {_scaled(name, metrics[name]):.4g}{'%' if is_return(name) else ''}"
                     for name in shown)
    return f"cutoff {cutoff} seed {seed} epoch {epoch}: {text}" + (" (best so far)" if best else "")


def epoch_logger(context: AssetExecutionContext, cutoff: str, seed: int,
                 trainer_cfg: TrainerConfig) -> EpochMetricsCallback:
    """A callback logging each epoch of one seed's fit to the run; its best epoch follows the
    metric the config's checkpointing and early stopping monitor."""

    def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
        context.log.info(epoch_line(cutoff, seed, epoch, metrics, callback.monitor, callback.best_epoch == epoch))

    from plusultra_core.training.epoch_metrics import EpochMetricsCallback

    callback = EpochMetricsCallback(log_epoch, monitor=trainer_cfg.monitor, mode=trainer_cfg.monitor_mode)
    return callback


def _best_row(callback: EpochMetricsCallback) -> dict[str, float]:
    """The best epoch's row (the restored weights); the last one when nothing was monitored."""
    if not callback.history:
        return {}
    best = callback.best_epoch
    return next((row for row in callback.history if row["epoch"] == best), callback.history[-1])


def _seed_mean(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def history_frame(callbacks: Mapping[int, EpochMetricsCallback]) -> pd.DataFrame:
    """One row per seed and epoch: ``seed``, ``epoch``, ``best`` and every metric, rounded for
    display, returns in percent (their column named ``<metric> %``)."""
    rows = [{"seed": int(seed), "epoch": int(row["epoch"]), "best": row["epoch"] == callback.best_epoch,
             **{name: display_value(name, value) for name, value in row.items() if name != "epoch"}}
            for seed, callback in callbacks.items() for row in callback.history]
    monitor = next(iter(callbacks.values())).monitor if callbacks else ""
    metrics = _ordered({name for row in rows for name in row} - {"seed", "epoch", "best"}, monitor)
    frame = pd.DataFrame(rows).reindex(columns=["seed", "epoch", "best", *metrics])
    return frame.rename(columns={name: f"{name} %" for name in metrics if is_return(name)})


def epoch_metadata(callbacks: Mapping[int, EpochMetricsCallback]) -> dict[str, MetadataValue]:
    """Metadata of one cutoff's finished fits, ``callbacks`` keyed by seed.

    Headline floats are seed means: the monitored metric (e.g. ``val/loss``) and `HEADLINES` at
    each seed's best epoch, ``best_epoch`` (0-based, as in Lightning's logs) and ``epochs`` run
    (early stopping can end seeds at different epochs). ``epoch_history`` is the per-seed table.
    """
    if not callbacks:
        return {}
    fits = list(callbacks.values())
    best_rows = [_best_row(c) for c in fits]
    names = {fits[0].monitor: fits[0].monitor, **HEADLINES}
    meta: dict[str, MetadataValue] = {}
    for metric, key in names.items():
        mean = _seed_mean([row.get(metric) for row in best_rows])
        if mean is not None:
            meta[key] = MetadataValue.float(display_value(metric, mean))
    for key, values in (("best_epoch", [c.best_epoch for c in fits]),
                        ("epochs", [len(c.history) for c in fits])):
        mean = _seed_mean(values)
        if mean is not None:
            meta[key] = MetadataValue.float(display_value(key, mean))
    meta["epoch_history"] = table(history_frame(callbacks))
    return meta
