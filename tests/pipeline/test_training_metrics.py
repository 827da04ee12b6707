"""Per-epoch training metrics reach the Dagster run: a log line per epoch in the run's event log, and
numeric (chartable) metadata -- seed means at each seed's best epoch, returns in percent -- plus
the per-seed epoch table."""

from __future__ import annotations

import pytest
from dagster import (AssetKey, FloatMetadataValue, MaterializeResult, TableMetadataValue, asset,
                     materialize)

from plusultra_core.training.epoch_metrics import EpochMetricsCallback
from plusultra_core.training.runner import run_training
from plusultra_pipeline.training_metrics import epoch_line, epoch_logger, epoch_metadata
from tests.core.training.helpers import train_config
from tests.core.training.synthetic import FEATURES, ar1_frame

CUTOFF = "2020-01-01"
SEEDS = (0, 1)
EPOCHS = 2


def _fit(history: list[dict]) -> EpochMetricsCallback:
    callback = EpochMetricsCallback()
    callback.history = history
    return callback


def test_metadata_is_seed_means_at_best_epochs_as_rounded_floats():
    fits = {
        0: _fit([{"epoch": 0, "val/loss": 2.0, "val/sharpe": 9.0, "val/max_drawdown": -0.5},
                 {"epoch": 1, "val/loss": 1.0, "val/sharpe": 1.0, "val/max_drawdown": -0.01234567891},
                 {"epoch": 2, "val/loss": 1.5, "val/sharpe": 7.0, "val/max_drawdown": -0.2}]),
        1: _fit([{"epoch": 0, "val/loss": 0.5, "val/sharpe": 3.0, "val/max_drawdown": -0.03, "train/loss": 4.0},
                 {"epoch": 1, "val/loss": 0.6, "val/sharpe": 5.0, "val/max_drawdown": -0.1}]),
    }
    meta = epoch_metadata(fits)
    # seed 0 is best at epoch 1, seed 1 at epoch 0: the headline is the mean of those rows
    assert meta["val/loss"] == FloatMetadataValue(0.75)
    assert meta["validation_sharpe (in-sample period)"] == FloatMetadataValue(2.0)
    assert meta["validation_max_drawdown % (in-sample period)"].value == pytest.approx(-2.11728, abs=1e-9)
    assert meta["train/loss"] == FloatMetadataValue(4.0)          # only the seed that logged it
    assert meta["best_epoch"] == FloatMetadataValue(0.5) and meta["epochs"] == FloatMetadataValue(2.5)
    assert "validation_ic (in-sample period)" not in meta          # nobody logged it: no made-up number

    history = meta["epoch_history"]
    assert isinstance(history, TableMetadataValue)
    assert [c.name for c in history.schema.columns][:4] == ["seed", "epoch", "best", "val/loss"]
    rows = [r.data for r in history.records]
    assert [(r["seed"], r["epoch"], r["best"]) for r in rows] == [
        (0, 0, False), (0, 1, True), (0, 2, False), (1, 0, True), (1, 1, False)]
    assert rows[1]["val/max_drawdown %"] == pytest.approx(-1.23457, abs=1e-9)   # percent, 6 digits
    assert rows[1]["train/loss"] is None


def test_epoch_line_names_cutoff_seed_epoch_and_monitor_first():
    metrics = {"train/sharpe": -0.1, "val/max_drawdown": -0.0123456, "val/sharpe": 1.23456, "train/loss": 0.5,
               "val/utility": 0.2, "val/loss": 0.123456}
    assert epoch_line(CUTOFF, 3, 4, metrics, "val/loss", best=True) == (
        "cutoff 2020-01-01 seed 3 epoch 4: val/loss 0.1235, val/sharpe 1.235, val/max_drawdown -1.235%, "
        "train/loss 0.5 (best so far)")
    assert epoch_line(CUTOFF, 3, 5, metrics, "val/utility", best=False).startswith(
        "cutoff 2020-01-01 seed 3 epoch 5: val/utility 0.2, val/sharpe 1.235,")


def test_training_asset_streams_epochs_to_the_run(tmp_path, dagster_instance):
    frame = ar1_frame(n_symbols=2, n_days=300, seed=5)

    @asset
    def tiny_checkpoint(context) -> MaterializeResult:
        watch = {}
        for seed in SEEDS:
            cfg = train_config(tmp_path / str(seed), trainer={"max_epochs": EPOCHS, "limit_train_batches": 2,
                                                              "seed": seed})
            watch[seed] = epoch_logger(context, CUTOFF, seed, cfg.trainer)
            run_training(cfg, frame, feature_names=FEATURES, callbacks=[watch[seed]])
        return MaterializeResult(metadata=epoch_metadata(watch))

    result = materialize([tiny_checkpoint], instance=dagster_instance)
    assert result.success

    messages = [e.user_message for e in dagster_instance.all_logs(result.run_id)]
    for seed in SEEDS:
        for epoch in range(EPOCHS):
            prefix = f"cutoff {CUTOFF} seed {seed} epoch {epoch}: val/loss "
            assert sum(m.startswith(prefix) for m in messages) == 1, (prefix, messages)

    event = dagster_instance.get_latest_materialization_event(AssetKey("tiny_checkpoint"))
    meta = event.asset_materialization.metadata
    for key in ("val/loss", "validation_sharpe (in-sample period)", "validation_ic (in-sample period)",
                "validation_max_drawdown % (in-sample period)", "train/loss", "best_epoch", "epochs"):
        assert isinstance(meta[key], FloatMetadataValue), (key, meta[key])
    assert meta["epochs"].value == EPOCHS
    assert len(meta["epoch_history"].records) == len(SEEDS) * EPOCHS
