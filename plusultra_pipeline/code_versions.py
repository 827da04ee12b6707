"""Code versions of the computed assets: the code's own version plus every setting that decides
an asset's content, so changing a setting makes exactly the assets it affects stale in Dagster."""

from __future__ import annotations

from plusultra_core.config import config_hash
from plusultra_pipeline.constants import HISTORY_CODE_VERSION

TRAINING_CODE_VERSION = "3"
EVALUATION_CODE_VERSION = "3"
INFERENCE_CODE_VERSION = "2"


def history_code_version(settings, lookback_periods: int) -> str:
    """History assets: code, period, sharding, feature selection, lookback."""
    return f"{HISTORY_CODE_VERSION}-" + config_hash({
        "history": settings.history, "sharding": settings.sharding, "features": settings.features,
        "lookback_periods": lookback_periods})[:8]


def training_code_version(settings, stage_config_path) -> str:
    """A checkpoint asset: code, its stage config file (resolved, with bases) and the training settings."""
    from plusultra_core.config import read_yaml

    return f"{TRAINING_CODE_VERSION}-" + config_hash({
        "config": read_yaml(settings.project_path(stage_config_path)),
        "training": settings.training})[:8]


def evaluation_code_version(settings) -> str:
    return f"{EVALUATION_CODE_VERSION}-" + config_hash({"evaluation": settings.evaluation,
                                                        "purge_bars": settings.training.purge_bars,
                                                        "seeds": settings.training.seeds})[:8]
