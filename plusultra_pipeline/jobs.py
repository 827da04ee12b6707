"""Asset jobs: history over symbol × period ranges, training and evaluation per cutoff, the
leaderboard, inference and the reconciliation of executed fills per trading day.

Each job's runs carry ``RUN_STAGE_TAG`` (``history``, ``training``, ...): the run queue of
deploy/dagster.yaml limits concurrency per stage by it. The executor is not fixed here: jobs take
the `Definitions` executor (`plusultra_pipeline.executors`, chosen by ``$PLUSULTRA_EXECUTOR``),
whose default, Dagster's ``multi_or_in_process_executor``, is switched per run by run config
(``execution: {config: {multiprocess: {max_concurrent: 4}}}`` or ``{in_process: {}}``).
"""

from dagster import AssetSelection, define_asset_job

from plusultra_pipeline.constants import (
    EVALUATION_REPORT,
    EXECUTED_TRADES,
    FEATURE_PANEL,
    INFERENCE_FRAMES,
    LEADERBOARD,
    MARKET_DB,
    PRETRAINED_CHECKPOINT,
    RL_CHECKPOINT,
    RUN_STAGE_TAG,
    SUPERVISED_CHECKPOINT,
    TRADE_RECONCILIATION,
    TRAINING_SET,
    VALIDATED_BARS,
    WINDOW_TENSORS,
)

HISTORY_ASSETS = (VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS)
TRAINING_ASSETS = (PRETRAINED_CHECKPOINT, SUPERVISED_CHECKPOINT)


def training_assets(pretrain: bool = True) -> tuple[str, ...]:
    """The checkpoint assets of the graph: without pretraining (``training.pretrain: false``)
    there is no pretrained checkpoint, only the cold-started supervised one."""
    return TRAINING_ASSETS if pretrain else (SUPERVISED_CHECKPOINT,)


def _job(name: str, stage: str, selection, description: str):
    return define_asset_job(name, selection=selection, description=description, tags={RUN_STAGE_TAG: stage})


def build_jobs(rl: bool = False, pretrain: bool = True) -> dict:
    """Every job by name, each tagged with its stage; ``rl``: the training job ends with `rl_checkpoint`;
    ``pretrain`` as ``training.pretrain`` (false: no pretrained checkpoint)."""
    training = (*training_assets(pretrain), RL_CHECKPOINT) if rl else training_assets(pretrain)
    jobs = (
        _job("observe_market_db_job", "observe", AssetSelection.assets(MARKET_DB),
             "Observe the SQLite file: record the fingerprint of every changed shard × period."),
        _job("history_job", "history", AssetSelection.assets(*HISTORY_ASSETS),
             "Validated bars -> feature panel -> window tensors over a symbol × period range, as one run."),
        _job("training_set_job", "training_set", AssetSelection.assets(TRAINING_SET),
             "Refresh every cutoff's training-set manifest (reads sidecars only, no rows)."),
        _job("training_job", "training", AssetSelection.assets(*training),
             ("Pretrained then supervised" if pretrain else "Supervised (cold start: training.pretrain is false)")
             + " (then, with RL on, PPO) checkpoint of one training cutoff."),
        _job("evaluation_job", "evaluation", AssetSelection.assets(EVALUATION_REPORT),
             "Out-of-sample report of one cutoff's fold (run once its period has ended)."),
        _job("leaderboard_job", "evaluation", AssetSelection.assets(LEADERBOARD),
             "One out-of-sample track record per model and baseline over all evaluated folds."),
        _job("inference_job", "inference", AssetSelection.assets(INFERENCE_FRAMES),
             "Inference frames for a range of trading days, as one run."),
        _job("observe_trades_job", "observe", AssetSelection.assets(EXECUTED_TRADES),
             "Observe the trades table: record the fingerprint of every decision day whose fills changed."),
        _job("reconciliation_job", "reconciliation", AssetSelection.assets(TRADE_RECONCILIATION),
             "Executed fills vs the proposed positions for a range of decision days, as one run."),
    )
    return {job.name: job for job in jobs}
