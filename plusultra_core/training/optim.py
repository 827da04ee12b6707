"""AdamW with decay/no-decay parameter groups and a step-wise warm-up + cosine learning-rate schedule.

Weight decay is a prior on *weights that multiply inputs*; applying it to norm gains, biases,
embeddings, mask tokens or learned queries only pulls them toward zero for no benefit (the
GPT-2 / nanoGPT convention), so those go in a group with ``weight_decay=0``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from plusultra_core.training.config import OptimConfig

# Fragments of a parameter's own (last) name that mark "not a projection weight": learned
# tokens, future queries, positional tables, per-variable embedding tables, biases of any shape.
_NO_DECAY_LEAF_PARTS = ("bias", "norm", "token", "queries", "pos", "embed_")


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed group.

    No decay for: parameters of normalisation and ``nn.Embedding`` layers, 1-d tensors (biases,
    gains, per-feature vectors), and parameters whose own name looks like a learned token, query,
    positional or embedding table (``decoder.queries``, ``mask_token``, ``vsn.embed_weight``).
    Projection weights inside an embedding *module* (``embed.proj.weight``) are decayed.
    """
    no_decay_ids: set[int] = set()
    for mod in module.modules():
        if isinstance(mod, (nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.RMSNorm)) or \
                isinstance(mod, nn.modules.batchnorm._BatchNorm):
            no_decay_ids.update(id(p) for p in mod.parameters(recurse=False))
    decay, no_decay, seen = [], [], set()
    for name, param in module.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue  # tied weights appear once
        seen.add(id(param))
        leaf = name.rsplit(".", 1)[-1].lower()
        if (id(param) in no_decay_ids or param.ndim < 2
                or any(part in leaf for part in _NO_DECAY_LEAF_PARTS)):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def warmup_cosine_lambda(warmup_steps: int, max_steps: int, min_lr_ratio: float):
    """Multiplier of the base lr at optimizer step ``s``: linear 0->1 over ``warmup_steps``, then
    cosine from 1 down to ``min_lr_ratio`` at ``max_steps`` (held there afterwards)."""
    warmup_steps = max(int(warmup_steps), 0)
    max_steps = max(int(max_steps), warmup_steps + 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / (max_steps - warmup_steps), 1.0)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_optimizer(module: nn.Module, cfg: OptimConfig, total_steps: int):
    """``(AdamW, LambdaLR)`` for ``module``; ``cfg.max_steps`` overrides ``total_steps`` when set.

    Returned in the shape Lightning's ``configure_optimizers`` expects when wrapped as
    ``{"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}``.
    """
    groups = parameter_groups(module, cfg.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    horizon = cfg.max_steps if cfg.max_steps is not None else total_steps
    # the warm-up must end before the schedule does, or the lr never reaches its peak
    warmup = min(cfg.warmup_steps, max(int(horizon) // 2, 0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine_lambda(warmup, max(int(horizon), 1), cfg.min_lr_ratio))
    return optimizer, scheduler


def lightning_optimizers(module: nn.Module, cfg: OptimConfig, total_steps: int) -> dict:
    """`build_optimizer` in the dict form ``LightningModule.configure_optimizers`` returns."""
    optimizer, scheduler = build_optimizer(module, cfg, total_steps)
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


def estimated_total_steps(trainer) -> int:
    """Optimizer steps the Lightning ``trainer`` will run (its own estimate, >= 1)."""
    try:
        steps = int(trainer.estimated_stepping_batches)
    except Exception:  # no trainer attached / infinite loaders: fall back to a long schedule
        steps = 10_000
    if steps <= 0 or steps > 10**9:
        steps = 10_000
    return steps
