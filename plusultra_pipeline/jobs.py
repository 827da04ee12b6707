"""Asset jobs: history over symbol × period ranges, training and evaluation per cutoff, the
leaderboard, and inference per trading day."""

from dagster import AssetSelection, define_asset_job

from plusultra_pipeline.constants import (
    EVALUATION_REPORT,
    FEATURE_PANEL,
    INFERENCE_FRAMES,
    LEADERBOARD,
    MARKET_DB,
    PRETRAINED_CHECKPOINT,
    SUPERVISED_CHECKPOINT,
    TRAINING_SET,
    VALIDATED_BARS,
    WINDOW_TENSORS,
)

HISTORY_ASSETS = (VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS)
TRAINING_ASSETS = (PRETRAINED_CHECKPOINT, SUPERVISED_CHECKPOINT)


def build_jobs() -> dict:
    return {
        "observe_market_db_job": define_asset_job(
            "observe_market_db_job", selection=AssetSelection.assets(MARKET_DB),
            description="Observe the SQLite file: record the fingerprint of every changed shard × period."),
        "history_job": define_asset_job(
            "history_job", selection=AssetSelection.assets(*HISTORY_ASSETS),
            description="Validated bars -> feature panel -> window tensors over a symbol × period range, as one run."),
        "training_set_job": define_asset_job(
            "training_set_job", selection=AssetSelection.assets(TRAINING_SET),
            description="Refresh every cutoff's training-set manifest (reads sidecars only, no rows)."),
        "training_job": define_asset_job(
            "training_job", selection=AssetSelection.assets(*TRAINING_ASSETS),
            description="Pretrained then supervised checkpoint of one training cutoff."),
        "evaluation_job": define_asset_job(
            "evaluation_job", selection=AssetSelection.assets(EVALUATION_REPORT),
            description="Out-of-sample report of one cutoff's fold (run once its period has ended)."),
        "leaderboard_job": define_asset_job(
            "leaderboard_job", selection=AssetSelection.assets(LEADERBOARD),
            description="One out-of-sample track record per model and baseline over all evaluated folds."),
        "inference_job": define_asset_job(
            "inference_job", selection=AssetSelection.assets(INFERENCE_FRAMES),
            description="Inference frames for a range of trading days, as one run."),
    }
