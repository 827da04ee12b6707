"""Code versions of the computed assets: the code's own version plus every setting that decides
an asset's content, so changing a setting makes exactly the assets it affects stale in Dagster."""

from __future__ import annotations

from plusultra_core.config import config_hash
from plusultra_pipeline.constants import HISTORY_CODE_VERSION

TRAINING_CODE_VERSION = "4"
RL_CODE_VERSION = "1"
EVALUATION_CODE_VERSION = "3"
INFERENCE_CODE_VERSION = "2"
RECONCILIATION_CODE_VERSION = "1"


def history_code_version(settings, lookback_periods: int) -> str:
    """History assets: code, period, sharding, feature selection, lookback."""
    return f"{HISTORY_CODE_VERSION}-" + config_hash({
        "history": settings.history, "sharding": settings.sharding, "features": settings.features,
        "lookback_periods": lookback_periods})[:8]


def training_code_version(settings, stage: str) -> str:
    """A checkpoint asset: code, its stage's configuration (file, bases and what the settings own
    in it: costs, purge, overrides) and the training settings."""
    from plusultra_pipeline.stage_config import graph_configuration_hash

    return f"{TRAINING_CODE_VERSION}-" + config_hash({
        "config": graph_configuration_hash(stage, settings), "training": _training(settings)})[:8]


def _training(settings) -> dict:
    """Training settings that decide a checkpoint: the stage files' content is hashed on its own,
    so where they live does not matter, and switching RL on leaves the other checkpoints current."""
    from plusultra_core.config import to_dict

    return {k: v for k, v in to_dict(settings.training).items()
            if k not in ("pretrain_config", "train_config", "rl_config")}


def rl_code_version(settings) -> str:
    """`rl_checkpoint`: code, the RL config's content (file and bases resolved) and the training settings."""
    from plusultra_core.rl import load_rl_config

    cfg = load_rl_config(settings.project_path(settings.training.rl_config)).to_dict()
    return f"{RL_CODE_VERSION}-" + config_hash({"rl": cfg, "training": _training(settings)})[:8]


def evaluation_code_version(settings) -> str:
    decides = {"evaluation": settings.evaluation, "purge_bars": settings.training.purge_bars,
               "seeds": settings.training.seeds}
    if settings.training.rl_enabled:  # only then: with RL off the version is what it always was
        decides["rl"] = True
    return f"{EVALUATION_CODE_VERSION}-" + config_hash(decides)[:8]
