"""Placebo: on the real demo market with its bars shuffled in time nothing is predictable, so a
model trained there must show no significant out-of-sample edge, and the verdict must say so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data.placebo import permute_bars_in_time, permuted_bars
from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

ROOT = Path(__file__).resolve().parents[3]

FIT_END, OOS_START, OOS_END = "2009-12-31", "2010-01-01", "2017-01-01"


def test_permutation_keeps_each_bar_and_the_return_distribution():
    rng = np.random.default_rng(0)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2 * n)))
    bars = pd.DataFrame({"symbol": np.repeat(["A", "B"], n), "timestamp": np.tile(np.arange(n), 2),
                         "close": close, "open": close * 1.001, "high": close * 1.01, "low": close * 0.99,
                         "volume": rng.integers(1, 100, 2 * n).astype(float)})
    out = permuted_bars(bars, seed=1, demean=False)
    for sym in ("A", "B"):
        a, b = bars[bars.symbol == sym], out[out.symbol == sym]
        ra, rb = np.diff(np.log(a.close.to_numpy())), np.diff(np.log(b.close.to_numpy()))
        np.testing.assert_allclose(np.sort(ra), np.sort(rb), atol=1e-12)   # same moves ...
        assert not np.allclose(ra, rb)                                      # ... in another order
        assert b.close.iloc[0] == a.close.iloc[0]
        flat = permuted_bars(bars, seed=1)[lambda f: f.symbol == sym].close.to_numpy()
        assert abs(np.log(flat[-1] / flat[0])) < 1e-9                      # demeaned: no drift
    assert (out.high >= out[["open", "close"]].max(axis=1)).all()
    assert (out.low <= out[["open", "close"]].min(axis=1)).all()
    np.testing.assert_allclose(out.high / out.close, 1.01, rtol=1e-12)   # each bar keeps its shape
    np.testing.assert_allclose(out.low / out.close, 0.99, rtol=1e-12)


@pytest.mark.slow
def test_a_model_trained_on_shuffled_bars_shows_no_significant_edge(demo_db_path, tmp_path):
    from plusultra_core.evaluation import evaluate_fold
    from plusultra_core.evaluation.research import research_summary
    from plusultra_core.inference.predict import load_supervised, predict_frame
    from plusultra_core.training.config import TrainConfig
    from plusultra_core.config import load_config
    from plusultra_core.training.runner import build_frame_from_db, run_training
    from plusultra_core.walkforward import training_frame

    placebo = permute_bars_in_time(demo_db_path, tmp_path / "placebo.sqlite", seed=11)
    cfg = load_config(TrainConfig, ROOT / "configs" / "train.yaml")
    cfg.data.db_path = str(placebo)
    cfg.data.train_end, cfg.data.val_end = "2008-12-31", None
    cfg.model.params = {"d_model": 16, "n_heads": 2, "n_layers": 1}
    cfg.trainer.max_epochs, cfg.trainer.limit_train_batches, cfg.trainer.limit_val_batches = 2, 60, 20
    cfg.trainer.progress_bar = cfg.trainer.tensorboard = False
    cfg.output_dir = str(tmp_path / "ckpt")
    frame, names = build_frame_from_db(cfg.data)
    info = run_training(cfg, frame=training_frame(frame, OOS_START, 10), feature_names=names)
    module, side = load_supervised(info.path)
    preds = predict_frame(module, frame, names, context_length=side["context_length"], start=OOS_START,
                          end=pd.Timestamp(OOS_END) - pd.Timedelta(days=1), zscore=side["zscore"])
    result = evaluate_fold(preds, frame, OOS_START, OOS_END, cost_bps=5.0, feature_names=names,
                           train_end=FIT_END, purge=10, model_name="placebo_model")
    with SQLiteMarketDataset(placebo) as ds:
        bench = ds.benchmark_returns("SP500")
    summary = research_summary(result.daily, result.positions, "placebo_model", benchmark=bench)
    row = summary.table.loc["placebo_model"]
    assert len(result.daily) > 1500                                  # about seven years of days
    assert abs(row["ic_t"]) < 2 and abs(row["rank_ic_t"]) < 2
    # the Sharpe interval is +-1.96 standard errors: |t| < 2 means 0 lies (about) inside it
    sharpe_t = row["sharpe"] / ((row["sharpe_ci_high"] - row["sharpe_ci_low"]) / (2 * 1.959964))
    assert abs(sharpe_t) < 2, summary.table
    assert row["p_vs_bh"] > 0.05
    assert "not significant" in summary.verdict and "did not beat" in summary.verdict
