"""Every architecture trains a cutoff when the pipeline settings choose it: `training.architecture`
used to keep train.yaml's temporal_hybrid params, so every cutoff of another one failed
(``unknown key 'n_layers'``). Pretraining then the warm-started fine-tune, as the graph runs them
(`cutoff_config` + `plusultra_core.training.runner`), on a small window frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from plusultra_core.config import read_yaml
from plusultra_core.models.registry import ARCHITECTURES, CONFIG_DIR
from plusultra_core.training.checkpoints import load_checkpoint
from plusultra_core.training.runner import run_pretraining, run_training
from plusultra_core.walkforward import training_frame
from plusultra_pipeline.stage_config import cutoff_config
from tests.pipeline.conftest import ROOT, settings_for

CUTOFF, FEATURES = "2017-07-01", ["f0", "f1", "f2", "f3"]
SMALL = {"data": {"context_length": 16, "block_length": 8, "blocks_per_batch": 2},
         "trainer": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, "progress_bar": False,
                     "tensorboard": False, "early_stopping_patience": None, "num_threads": 1},
         "optim": {"warmup_steps": 1}}


def window_frame(n_days: int = 420, symbols=("AAA", "BBB")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2015-12-01", periods=n_days)
    rows = len(days) * len(symbols)
    frame = pd.DataFrame({"timestamp": np.tile(days, len(symbols)), "symbol": np.repeat(symbols, len(days))})
    for name in FEATURES:
        frame[name] = rng.standard_normal(rows).astype(np.float32)
    frame["ret_1d"] = (0.01 * rng.standard_normal(rows)).astype(np.float32)
    frame["valid"] = True
    return frame


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("architectures")
    stages = {}
    for kind in ("pretrain", "train"):
        stages[kind] = tmp / f"{kind}.yaml"
        stages[kind].write_text(yaml.safe_dump({"base": str(ROOT / "configs" / f"{kind}.yaml"), **SMALL}))
    base = settings_for(tmp / "unused.sqlite", tmp / "store")
    return replace(base, training=replace(base.training, pretrain_config=str(stages["pretrain"]),
                                          train_config=str(stages["train"]), validation_months=3, seeds=(0,)))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_architecture_trains_a_cutoff(settings, architecture):
    settings = replace(settings, training=replace(settings.training, architecture=architecture))
    frame = training_frame(window_frame(), CUTOFF, settings.training.purge_bars)
    pre = cutoff_config("pretrain", settings, CUTOFF, 0, FEATURES)
    run_pretraining(pre, frame=frame, feature_names=pre.data.feature_names)
    sup = cutoff_config("train", settings, CUTOFF, 0, FEATURES)
    info = run_training(sup, frame=frame, feature_names=sup.data.feature_names)
    _, side = load_checkpoint(info.path)
    assert side["architecture"] == architecture and side["parent"] == sup.pretrained
    # the architecture's own parameters, recorded in the config the run hashes
    defaults = read_yaml(CONFIG_DIR / f"{architecture}.yaml")
    assert {k: side["model_config"][k] for k in defaults} == {k: side["config"]["model"]["params"][k]
                                                               for k in defaults}
    assert side["config"]["data"]["feature_names"] == FEATURES and np.isfinite(info.metrics["val/loss"])
