"""`run_rl`: a supervised checkpoint + a window frame in, an RL checkpoint (same format) out.

The RL checkpoint *is* a supervised checkpoint: the same tensor state dict (backbone + policy
head, PPO-updated; the training-only value head is left out) and the parent's sidecar with
``kind: "rl"``, ``parent`` = the supervised checkpoint, the `RLConfig`, and the PPO statistics.
So `plusultra_core.inference.predict.load_supervised`, the agent, the seed ensemble and the
evaluation all read it unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from plusultra_core.rl.config import RLConfig
from plusultra_core.rl.env import build_env
from plusultra_core.rl.ppo import train_ppo
from plusultra_core.training.checkpoints import CheckpointInfo, save_checkpoint

__all__ = ["RL_NAME", "RL_KIND", "run_rl"]

RL_NAME = "rl.pt"
RL_KIND = "rl"
# parent sidecar keys that describe the parent's own run, not this one
_PARENT_ONLY = ("created_at", "code_version", "n_tensors", "weights_sha256", "metrics", "splits")


def run_rl(supervised: str | Path, frame: pd.DataFrame, cfg: RLConfig, output: str | Path, *,
           fit_end=None, log: Callable[[str], None] | None = None) -> CheckpointInfo:
    """PPO-fine-tune the checkpoint ``supervised`` on ``frame`` and write ``output`` (+ ``.json``).

    ``frame`` is a window frame with the checkpoint's features (``close``/``volume`` too when the
    simulator prices impact or a volume cap); PPO trains on its bars before ``fit_end`` and keeps
    the weights that do best after it (see `train_ppo`). ``output`` is a file path, or a directory
    that gets ``rl.pt``. The caller's torch thread count stands (same threads -> same weights).
    """
    from plusultra_core.inference.predict import load_supervised

    module, side = load_supervised(supervised)
    env = build_env(frame, side["feature_names"], context_length=int(side["context_length"]),
                    zscore=bool(side.get("zscore", False)), simulator=cfg.simulator)
    started = time.perf_counter()
    result = train_ppo(module, env, cfg, fit_end=fit_end, log=log)
    seconds = time.perf_counter() - started
    path = Path(output)
    if path.suffix != ".pt":
        path = path / RL_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {k: v for k, v in side.items() if k not in _PARENT_ONLY}
    sidecar.update({
        "kind": RL_KIND, "parent": str(supervised), "parent_kind": side.get("kind", "supervised"),
        "rl_config": cfg.to_dict(), "ppo": result.stats(),
        "metrics": {"rl/warm_net_sharpe": result.warm_start.get("net_sharpe"),
                    "rl/net_sharpe": result.final.get("net_sharpe"),
                    "rl/turnover": result.final.get("turnover"), "rl/cost": result.final.get("cost"),
                    "rl/best_iteration": result.best_iteration, "rl/seconds": round(seconds, 3)},
        "value_head": "not saved: a training-only critic (PPO restarts it from the policy)",
    })
    return save_checkpoint(path, {k: v.detach() for k, v in result.state.items() if isinstance(v, torch.Tensor)},
                           sidecar)
