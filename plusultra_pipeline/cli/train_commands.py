"""``plusultra pretrain`` and ``plusultra train``: the two training stages without the UI.

Each reads its YAML config (unknown keys are an error naming the key and the file), applies the
command-line overrides, runs `plusultra_core.training.runner`, and prints where the checkpoint and
its sidecar went plus the validation (and, for ``train``, test) metrics.
"""

from __future__ import annotations

import dataclasses

_METRIC_ORDER = ("val/loss", "val/masked_loss", "val/sharpe", "val/max_drawdown", "val/ic",
                 "val/long_sharpe", "test/sharpe", "test/max_drawdown", "test/ic", "test/long_sharpe",
                 "epochs", "steps")


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="masked time-series pretraining of a backbone")
    p.add_argument("--config", default="configs/pretrain.yaml", help="pretraining YAML (default: %(default)s)")
    _common(p)
    p.set_defaults(handler=_pretrain)

    t = subparsers.add_parser("train", help="supervised trading training (optionally warm-started)")
    t.add_argument("--config", default="configs/train.yaml", help="training YAML (default: %(default)s)")
    t.add_argument("--pretrained", default=None, help="pretraining checkpoint (.pt) to warm-start the backbone")
    _common(t)
    t.set_defaults(handler=_train)


def _common(p) -> None:
    p.add_argument("--db", default=None, help="SQLite market database (overrides data.db_path)")
    p.add_argument("--out", default=None, help="output directory (overrides output_dir)")
    p.add_argument("--max-epochs", type=int, default=None, help="overrides trainer.max_epochs")
    p.add_argument("--seed", type=int, default=None, help="overrides trainer.seed")
    p.add_argument("--architecture", default=None, help="overrides model.architecture")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar (logs, CI)")


def _apply_overrides(cfg, args):
    from plusultra_core.errors import ConfigError

    if args.max_epochs is not None and args.max_epochs < 1:
        raise ConfigError(f"--max-epochs must be >= 1, got {args.max_epochs}")
    data = cfg.data if args.db is None else dataclasses.replace(cfg.data, db_path=args.db)
    trainer = cfg.trainer
    if args.max_epochs is not None:
        trainer = dataclasses.replace(trainer, max_epochs=args.max_epochs)
    if args.seed is not None:
        trainer = dataclasses.replace(trainer, seed=args.seed)
    if args.no_progress:
        trainer = dataclasses.replace(trainer, progress_bar=False)
    model = cfg.model
    if args.architecture is not None:
        # another architecture's parameters do not apply: start from its own config file
        model = dataclasses.replace(model, architecture=args.architecture, params={}, path=None)
    changes = {"data": data, "trainer": trainer, "model": model}
    if args.out is not None:
        changes["output_dir"] = args.out
    if getattr(args, "pretrained", None) is not None:
        changes["pretrained"] = args.pretrained
    return dataclasses.replace(cfg, **changes)


def _report(info) -> None:
    print(f"checkpoint: {info.path}")
    print(f"sidecar:    {info.sidecar_path}")
    shown = [k for k in _METRIC_ORDER if k in info.metrics]
    for key in shown:
        value = info.metrics[key]
        print(f"  {key:<20} {value:.4f}" if isinstance(value, float) else f"  {key:<20} {value}")


def _pretrain(args) -> int:
    from plusultra_core.config import load_config
    from plusultra_core.training.config import PretrainConfig
    from plusultra_core.training.runner import run_pretraining

    cfg = _apply_overrides(load_config(PretrainConfig, args.config), args)
    _report(run_pretraining(cfg))
    return 0


def _train(args) -> int:
    from plusultra_core.config import load_config
    from plusultra_core.training.config import TrainConfig
    from plusultra_core.training.runner import run_training

    cfg = _apply_overrides(load_config(TrainConfig, args.config), args)
    _report(run_training(cfg))
    return 0
