"""Code versions of the computed assets: the code's own version plus every setting that decides
an asset's content, so changing a setting makes exactly the assets it affects stale in Dagster."""

from __future__ import annotations

from plusultra_core.config import config_hash
from plusultra_pipeline.constants import HISTORY_CODE_VERSION

TRAINING_CODE_VERSION = "4"
EVALUATION_CODE_VERSION = "3"
INFERENCE_CODE_VERSION = "2"


def history_code_version(settings, lookback_periods: int) -> str:
    """History assets: code, period, sharding, feature selection, lookback."""
    return f"{HISTORY_CODE_VERSION}-" + config_hash({
        "history": settings.history, "sharding": settings.sharding, "features": settings.features,
        "lookback_periods": lookback_periods})[:8]


def training_code_version(settings, stage: str) -> str:
    """A checkpoint asset: code, its stage's configuration (file, bases and what the settings own
    in it: costs, purge, overrides) and the training settings."""
    from plusultra_core.config import to_dict
    from plusultra_pipeline.stage_config import graph_configuration_hash

    # the stage files' content is in the configuration hash: where they live does not matter
    training = {k: v for k, v in to_dict(settings.training).items() if k not in ("pretrain_config", "train_config")}
    return f"{TRAINING_CODE_VERSION}-" + config_hash({
        "config": graph_configuration_hash(stage, settings), "training": training})[:8]


def evaluation_code_version(settings) -> str:
    return f"{EVALUATION_CODE_VERSION}-" + config_hash({"evaluation": settings.evaluation,
                                                        "purge_bars": settings.training.purge_bars,
                                                        "seeds": settings.training.seeds})[:8]
