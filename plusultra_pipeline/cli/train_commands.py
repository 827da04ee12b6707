"""``plusultra pretrain`` and ``plusultra train``: the two training stages without the UI.

Each builds its config the way the graph does (`plusultra_pipeline.stage_config.stage_config`: the
stage YAML, what the pipeline settings own -- database, purge, costs, architecture and epochs
overrides -- then the command-line flags), runs `plusultra_core.training.runner`, and prints where
the checkpoint and its sidecar went plus the validation (and, for ``train``, test) metrics.
"""

from __future__ import annotations

_METRIC_ORDER = ("val/loss", "val/masked_loss", "val/contrastive_loss", "val/sharpe", "val/max_drawdown", "val/ic",
                 "val/long_sharpe", "test/sharpe", "test/max_drawdown", "test/ic", "test/long_sharpe",
                 "epochs", "steps")


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="self-supervised pretraining of a backbone (masked, contrastive or both: the config's objective)")
    p.add_argument("--config", default=None, help="pretraining YAML (default: the settings' training.pretrain_config)")
    _common(p)
    p.set_defaults(handler=_pretrain)

    t = subparsers.add_parser("train", help="supervised trading training (optionally warm-started)")
    t.add_argument("--config", default=None, help="training YAML (default: the settings' training.train_config)")
    t.add_argument("--pretrained", default=None, help="pretraining checkpoint (.pt) to warm-start the backbone")
    _common(t)
    t.set_defaults(handler=_train)


def _common(p) -> None:
    p.add_argument("--settings", default=None,
                   help="pipeline settings YAML (default: $PLUSULTRA_CONFIG or configs/pipeline.yaml)")
    p.add_argument("--db", default=None, help="SQLite market database (default: the settings' database)")
    p.add_argument("--out", default=None, help="output directory (overrides output_dir)")
    p.add_argument("--max-epochs", type=int, default=None, help="overrides trainer.max_epochs")
    p.add_argument("--seed", type=int, default=None, help="overrides trainer.seed")
    p.add_argument("--architecture", default=None,
                   help="another model.architecture, with the parameters of configs/models/<architecture>.yaml")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar (logs, CI)")


def run_overrides(args):
    """The command line as `RunOverrides` (paths given on it are relative to the working directory)."""
    from pathlib import Path

    from plusultra_pipeline.stage_config import RunOverrides

    return RunOverrides(config=str(Path(args.config).resolve()) if args.config else None,
                        architecture=args.architecture, max_epochs=args.max_epochs, seed=args.seed,
                        progress_bar=not args.no_progress, db_path=str(Path(args.db).resolve()) if args.db else None,
                        output_dir=args.out,
                        pretrained=getattr(args, "pretrained", None))


def config_of(kind: str, args):
    """The config ``plusultra <pretrain|train>`` runs with these arguments."""
    from plusultra_pipeline.settings import load_settings
    from plusultra_pipeline.stage_config import stage_config

    return stage_config(kind, load_settings(args.settings), run_overrides(args))


def _report(info) -> None:
    print(f"checkpoint: {info.path}")
    print(f"sidecar:    {info.sidecar_path}")
    shown = [k for k in _METRIC_ORDER if k in info.metrics]
    for key in shown:
        value = info.metrics[key]
        print(f"  {key:<20} {value:.4f}" if isinstance(value, float) else f"  {key:<20} {value}")


def _pretrain(args) -> int:
    from plusultra_core.training.runner import run_pretraining

    _report(run_pretraining(config_of("pretrain", args)))
    return 0


def _train(args) -> int:
    from plusultra_core.training.runner import run_training

    _report(run_training(config_of("train", args)))
    return 0
