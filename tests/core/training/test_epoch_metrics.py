"""`EpochMetricsCallback` reports one fresh row per fit epoch: the values Lightning logged for that
epoch (not the previous one), never the sanity check or the runner's re-validation, and the best
epoch is the one the checkpoint restored."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from plusultra_core.training.config import build_model_config
from plusultra_core.training.datamodule import WindowDataModule
from plusultra_core.training.epoch_metrics import EpochMetricsCallback, epoch_scalars
from plusultra_core.training.runner import run_training
from plusultra_core.training.supervised_module import SupervisedTradingModule

from .helpers import train_config
from .synthetic import FEATURES, ar1_frame

EPOCHS = 3


@pytest.fixture(scope="module")
def tiny_frame():
    return ar1_frame(n_symbols=2, n_days=300, seed=3)


def test_one_fresh_row_per_epoch_and_best_epoch_is_the_restored_one(tmp_path, tiny_frame):
    calls = []
    callback = EpochMetricsCallback(lambda epoch, metrics: calls.append((epoch, metrics)))
    cfg = train_config(tmp_path, trainer={"max_epochs": EPOCHS, "limit_train_batches": 3})
    info = run_training(cfg, tiny_frame, feature_names=FEATURES, callbacks=[callback])

    # one row per fit epoch: the post-fit `trainer.validate` of the restored weights adds none
    assert [row["epoch"] for row in callback.history] == list(range(EPOCHS))
    assert [{"epoch": e, **m} for e, m in calls] == callback.history
    for row in callback.history:
        for key in ("val/loss", "val/sharpe", "val/ic", "val/max_drawdown", "train/loss"):
            assert math.isfinite(row[key]), (key, row)
        assert not any(k.endswith(("_step", "_epoch")) for k in row), row

    # each row holds that epoch's values as Lightning logged them (a hook that fires too early sees
    # last epoch's stream metrics and the loss's Sharpe penalty under val/sharpe)
    logged = pd.read_csv(tmp_path / "logs" / "train" / "version_0" / "metrics.csv")
    val = logged.dropna(subset=["val/loss"]).groupby("epoch").last()
    train = logged.dropna(subset=["train/loss_epoch"]).groupby("epoch").last()
    for row in callback.history:
        for key in ("val/loss", "val/sharpe", "val/ic"):
            assert row[key] == pytest.approx(val.at[row["epoch"], key], rel=1e-6), key
        assert row["train/loss"] == pytest.approx(train.at[row["epoch"], "train/loss_epoch"], rel=1e-6)

    losses = [row["val/loss"] for row in callback.history]
    assert callback.best_epoch == losses.index(min(losses))
    # the checkpoint the runner restored is the best epoch's
    assert callback.history[callback.best_epoch]["val/loss"] == pytest.approx(info.metrics["best_score"], rel=1e-6)


def test_sanity_check_and_epochs_without_validation_report_no_val_metrics(tmp_path, tiny_frame):
    cfg = train_config(tmp_path)
    module = SupervisedTradingModule(build_model_config(cfg.model), cfg.model.architecture, len(FEATURES),
                                     cfg.data.horizon, cfg.head, cfg.loss, cfg.optim)
    dm = WindowDataModule.from_frame(tiny_frame, cfg.data, FEATURES, seed=0)
    callback = EpochMetricsCallback(monitor="val/sharpe", mode="max")
    # validation only after epoch 1; the sanity check validates before epoch 0
    trainer = pl.Trainer(max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=2,
                         limit_train_batches=2, limit_val_batches=2, callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)

    first, second = callback.history
    assert first["epoch"] == 0 and "train/loss" in first
    assert not any(k.startswith("val/") for k in first), first
    assert second["epoch"] == 1 and math.isfinite(second["val/sharpe"])
    assert callback.best_epoch == 1       # the only epoch that reported the monitored metric


def test_epoch_scalars_keeps_finite_epoch_scalars_only():
    raw = {"train/loss": torch.tensor(0.5), "train/loss_step": torch.tensor(0.7),
           "train/loss_epoch": torch.tensor(0.5), "val/other_epoch": torch.tensor(2.0),
           "val/nan": torch.tensor(float("nan")), "val/vector": torch.ones(3), "val/count": 4, "flag": True}
    assert epoch_scalars(raw) == {"train/loss": 0.5, "val/other_epoch": 2.0, "val/count": 4.0}


def test_best_epoch_follows_mode():
    callback = EpochMetricsCallback(monitor="val/loss", mode="max")
    assert callback.best_epoch is None
    callback.history = [{"epoch": 0, "val/loss": 1.0}, {"epoch": 1, "val/loss": 3.0},
                        {"epoch": 2, "val/loss": 3.0}, {"epoch": 3}]
    assert callback.best_epoch == 1       # first of equals, as ModelCheckpoint keeps it
    callback.mode = "min"
    assert callback.best_epoch == 0
    with pytest.raises(ValueError, match="mode"):
        EpochMetricsCallback(mode="best")
