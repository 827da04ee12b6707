"""Tiny configs shared by the training tests (small enough for a 2-core CI box)."""

from __future__ import annotations

import dataclasses

from plusultra_core.config import load_config
from plusultra_core.models.registry import resolve
from plusultra_core.training.config import PretrainConfig, TrainConfig

# the smallest sensible width for every backbone; keys a backbone lacks are dropped
_TINY = {"d_model": 16, "n_heads": 2, "n_layers": 1, "encoder_layers": 1, "decoder_layers": 1,
         "dropout": 0.0, "num_experts": 2, "top_k": 1, "ff_mult": 2, "ssm_state_dim": 4,
         "var_dim": 4}


def tiny_params(architecture: str, **extra) -> dict:
    """Overrides shrinking ``architecture`` to a test-sized model (only keys its config has)."""
    cfg_cls, _ = resolve(architecture)
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    params = {k: v for k, v in {**_TINY, **extra}.items() if k in names}
    return params


def _common(architecture: str, out_dir, **data) -> dict:
    return {
        "data": {"context_length": 16, "horizon": 2, "train_end": 0.6, "val_end": 0.8,
                 "block_length": 16, "blocks_per_batch": 4, **data},
        "model": {"architecture": architecture, "params": tiny_params(architecture)},
        "optim": {"lr": 3e-3, "warmup_steps": 10},
        "trainer": {"max_epochs": 3, "progress_bar": False, "tensorboard": False,
                    "early_stopping_patience": None, "num_threads": 1},
        "output_dir": str(out_dir),
    }


def train_config(out_dir, architecture: str = "temporal_hybrid", *, trainer=None, **data) -> TrainConfig:
    raw = _common(architecture, out_dir, **data)
    raw["trainer"].update(trainer or {})
    raw.update({"head": {"kind": "policy"}, "loss": {"cost_bps": 1.0}})
    return load_config(TrainConfig, raw)


def pretrain_config(out_dir, architecture: str = "temporal_hybrid", *, trainer=None, **data) -> PretrainConfig:
    raw = _common(architecture, out_dir, **data)
    raw["trainer"].update(trainer or {})
    return load_config(PretrainConfig, raw)
