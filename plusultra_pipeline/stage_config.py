"""The config of one training-stage run, built by one function for `plusultra pretrain|train` and the graph.

A stage file (``configs/pretrain.yaml``, ``configs/train.yaml``, both on ``configs/training.yaml``)
says what to train. What the whole project shares is stated once, in the pipeline settings, and
written into every stage config from there (`OWNED`); a stage file that states one of those keys
is refused with the name of its owner, so no two places can disagree. On top of the file, in
this order:

1. the settings' ``training.architecture`` / ``max_epochs`` / ``progress_bar``;
2. the run's own values (`RunOverrides`: command-line flags, or the graph's seed and paths);
3. in the graph, the cutoff (`Fold`): its split and the features of its training set.

An architecture override starts that architecture from ``configs/models/<architecture>.yaml``:
another architecture's ``params`` do not apply to it. The result is the config the run uses --
every backbone parameter resolved into ``model.params`` -- so the config a checkpoint records, and
its hash, describe exactly what ran.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from plusultra_core.config import from_dict, read_yaml, to_dict
from plusultra_core.errors import ConfigError
from plusultra_core.loss_config import LossConfig
from plusultra_core.models.registry import config_class
from plusultra_core.training.config import DataConfig, ModelConfig, PretrainConfig, TrainConfig, build_model_config
from plusultra_core.walkforward import cutoff_split

DAYS_PER_YEAR = 365.25
KINDS = {"pretrain": (PretrainConfig, "pretrain_config"), "train": (TrainConfig, "train_config")}

# stage-file key -> the setting that owns it
OWNED = {
    ("data", "db_path"): "the pipeline settings' database ($PLUSULTRA_DB, or --db)",
    ("data", "purge_bars"): "the pipeline settings' training.purge_bars",
    ("data", "recency_halflife_days"): "the pipeline settings' training.recency_halflife_years",
    ("loss", "cost_bps"): "the pipeline settings' evaluation.cost_bps",
    ("head", "return_scale"): "loss.return_scale",
}
# the graph trains on every stored symbol over the cutoff's range: these would be ignored there
_NOT_IN_GRAPH = (("data", "symbols"), ("data", "start"), ("data", "end"))


@dataclass(frozen=True)
class RunOverrides:
    """What one run changes (None keeps the file's or the settings' value)."""

    config: str | None = None          # stage file (default: training.<kind>_config of the settings)
    architecture: str | None = None
    max_epochs: int | None = None
    seed: int | None = None
    progress_bar: bool = True          # False turns the file's progress bar off
    db_path: str | None = None
    output_dir: str | None = None
    pretrained: str | None = None      # supervised runs: the warm-start checkpoint


@dataclass(frozen=True)
class Fold:
    """What a cutoff sets in the graph: where the fit ends (validation runs from the purged slice
    after it to the end of the cutoff's data) and the features its training set holds."""

    fit_end: str
    feature_names: tuple[str, ...]


def fold_of(settings, cutoff, feature_names) -> Fold:
    split = cutoff_split(cutoff, settings.training.cutoff_window)
    return Fold(str(split.fit_end.date()), tuple(feature_names))


def cutoff_config(kind: str, settings, cutoff: str, seed: int, feature_names, store_root=None):
    """The graph's config of one cutoff and seed: output where the store's layout puts the
    checkpoint (in the store at ``store_root``, default the settings'; the graph passes its `store`
    resource's root); a supervised run warm-starts from the same cutoff and seed's pretrained
    checkpoint (or, with incremental retraining, from the previous cutoff's supervised one; without
    pretraining, ``training.pretrain: false``, it starts cold unless it has such a previous one)."""
    from plusultra_pipeline.layout import checkpoint_path, previous_cutoff

    _kind(kind)
    store = settings.store_path if store_root is None else Path(store_root)
    asset = {"pretrain": "pretrained", "train": "supervised"}[kind]
    run = RunOverrides(seed=seed, output_dir=str(checkpoint_path(store, asset, cutoff, seed).parent))
    if kind == "train":
        parent = checkpoint_path(store, "pretrained", cutoff, seed) if settings.training.pretrain else None
        previous = (previous_cutoff(store, "supervised", cutoff, settings.training.seeds)
                    if settings.training.warm_start_from_previous else None)
        if previous:
            parent = checkpoint_path(store, "supervised", previous, seed)
        run = replace(run, pretrained=str(parent) if parent else None)
    return stage_config(kind, settings, run, fold_of(settings, cutoff, feature_names))


def stage_path(kind: str, settings, run: RunOverrides = RunOverrides()) -> Path:
    """The stage file a run reads: ``run.config`` or the settings' ``training.<kind>_config``."""
    _, attr = _kind(kind)
    return settings.project_path(run.config or getattr(settings.training, attr))


def stage_config(kind: str, settings, run: RunOverrides = RunOverrides(), fold: Fold | None = None):
    """The `PretrainConfig` (``kind="pretrain"``) or `TrainConfig` (``"train"``) of one run."""
    cls, _ = _kind(kind)
    path = stage_path(kind, settings, run)
    raw = read_yaml(path)
    _refuse(raw, OWNED, path)
    if fold is not None:
        _refuse(raw, {key: "the graph (every stored symbol, the cutoff's range); it applies to "
                           "plusultra train only" for key in _NOT_IN_GRAPH}, path)
    known = {f.name for f in fields(cls)}
    for (section, key), value in _owned(settings, raw, path).items():
        if section in known:
            raw.setdefault(section, {})[key] = value
    _apply_run(raw, settings.training, run)
    raw["model"] = _resolved_model(raw.get("model") or {}, path)
    if fold is not None:
        raw.setdefault("data", {}).update(train_end=fold.fit_end, val_end=None,
                                          feature_names=list(fold.feature_names), feature_tags=None)
    cfg = from_dict(cls, raw, str(path))
    if fold is not None and cfg.trainer.strategy != "auto":
        # Lightning's DDP launcher re-runs sys.argv per extra device, and under torchrun every rank
        # would execute the whole Dagster step: a graph step trains in its one process
        raise ConfigError(f"{path}: trainer.strategy {cfg.trainer.strategy} (devices {cfg.trainer.devices!r} x "
                          f"{cfg.trainer.num_nodes} node(s)) is for plusultra train; a graph step trains in one "
                          "process: scale the graph out by running cutoffs and seeds in parallel steps "
                          "(README, Scaling out)")
    return cfg


def graph_configuration_hash(kind: str, settings) -> str:
    """What decides a graph checkpoint besides its cutoff, seed and training set: the stage config
    without what a cutoff sets (split, features) or a run sets (paths, seed) -- its code version."""
    from plusultra_core.evaluation.trials import configuration_hash

    raw = to_dict(stage_config(kind, settings))
    for key in ("feature_names", "feature_tags"):
        raw["data"].pop(key)
    return configuration_hash(raw)


def _kind(kind: str):
    if kind not in KINDS:
        raise ConfigError(f"unknown training stage {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind]


def _refuse(raw: dict, keys: dict, path) -> None:
    for (section, key), owner in keys.items():
        if (raw.get(section) or {}).get(key) is not None:
            raise ConfigError(f"{path}: {section}.{key} is set by {owner}; remove it from the stage file")


def _owned(settings, raw: dict, path) -> dict:
    training = settings.training
    horizon = (raw.get("data") or {}).get("horizon", DataConfig.horizon)
    if isinstance(horizon, int) and training.purge_bars < horizon:
        raise ConfigError(f"training.purge_bars ({training.purge_bars}) must be >= data.horizon ({horizon}) of "
                          f"{path}: a shorter purge lets training targets reach the validation slice or the fold")
    halflife = training.recency_halflife_years
    return {("data", "db_path"): str(settings.database_path),
            ("data", "purge_bars"): training.purge_bars,
            ("data", "recency_halflife_days"): halflife * DAYS_PER_YEAR if halflife else None,
            ("loss", "cost_bps"): settings.evaluation.cost_bps,
            ("head", "return_scale"): (raw.get("loss") or {}).get("return_scale", LossConfig.return_scale)}


def _resolved_model(model: dict, path) -> dict:
    """Every backbone parameter the run uses (its architecture's file plus ``params``), stated in
    the config itself, so the config hash changes when the model does."""
    cfg = from_dict(ModelConfig, model, f"{path} [model]")
    return {"architecture": cfg.architecture, "params": to_dict(build_model_config(cfg))}


def _apply_run(raw: dict, training, run: RunOverrides) -> None:
    architecture = run.architecture or training.architecture
    if architecture:
        config_class(architecture)  # an unknown name fails here, naming the known ones
        raw["model"] = {"architecture": architecture}  # its own file's defaults, not the old params
    trainer = raw.setdefault("trainer", {})
    max_epochs = run.max_epochs if run.max_epochs is not None else training.max_epochs
    if max_epochs is not None:
        trainer["max_epochs"] = max_epochs
    if run.seed is not None:
        trainer["seed"] = int(run.seed)
    if not (run.progress_bar and training.progress_bar):
        trainer["progress_bar"] = False
    if run.db_path is not None:
        raw["data"]["db_path"] = str(run.db_path)
    if run.output_dir is not None:
        raw["output_dir"] = str(run.output_dir)
    if run.pretrained is not None:
        raw["pretrained"] = str(run.pretrained)
