"""Training group: self-supervised pretraining and supervised fine-tuning per training cutoff.

One run per cutoff (each is its own set of models). With ``training.pretrain: false`` the group
has no pretrained checkpoint: each supervised model starts cold (its sidecar's ``parent`` is
null), the baseline against which pretraining is measured. A cutoff trains one model per seed of
``training.seeds``: pretraining seed ``s`` warm-starts supervised seed ``s``, so the seeds are
independent replicates and the evaluation can report their spread and their ensemble. Inside a
cutoff the split is the cutoff's (`plusultra_core.walkforward`): fit up to ``C - validation_months``,
early-stop on the purged slice after it, never see ``C - purge_bars`` or later. The config of each
run is `plusultra_pipeline.stage_config.cutoff_config`'s (the one `plusultra train` builds, plus
the cutoff's split and the training set's features), so its hash is the hash of what ran. Every
checkpoint's lineage -- data version, features and their hash, config hash, fit and validation
ranges, parent checkpoint, validation metrics -- is in its JSON sidecar and on its partition.

With ``training.rl_config`` set, ``rl_checkpoint`` follows: each seed's supervised checkpoint
PPO-fine-tuned on the execution simulator (`plusultra_core.rl.run_rl`) over the same fit range,
its weights selected on the same validation slice, written in the supervised format. The seed
loop and the fits are `plusultra_pipeline.cutoff_training`'s.
"""

from dagster import AssetCheckSpec, AssetExecutionContext, BackfillPolicy, asset

from plusultra_pipeline.constants import (
    PRETRAINED_CHECKPOINT,
    RL_CHECKPOINT,
    SUPERVISED_CHECKPOINT,
    TRAINING_GROUP,
    TRAINING_SET,
)
from plusultra_pipeline.code_versions import rl_code_version, training_code_version
from plusultra_pipeline.cutoff_training import SIDECAR_CHECK, WEIGHTS_CHECK, rl_fit, stage_fit, train_cutoff
from plusultra_pipeline.executors import training_op_tags
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings


def _check_specs(asset: str, cutoffs_def) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(WEIGHTS_CHECK, asset=asset, partitions_def=cutoffs_def,
                           description="Every floating-point weight of every seed's checkpoint is finite."),
            AssetCheckSpec(SIDECAR_CHECK, asset=asset, partitions_def=cutoffs_def,
                           description="Each seed's sidecar names this cutoff and seed, and the training set's "
                                       "data version and feature hash.")]


def build_training_assets(settings: PipelineSettings, cutoffs_def):
    training = settings.training
    gpu_tags = training_op_tags()  # $PLUSULTRA_TRAINING_GPUS: the step pod's GPU request (k8s / Celery)

    def train_stage(context, store, kind: str, run, stage: str):
        fit = stage_fit(settings, store.root, context.partition_key, stage, run, context)
        yield from train_cutoff(settings, store, context.partition_key, kind, fit, context.log)

    def checkpoint_asset(name: str, deps: list, code_version: str, **kwargs):
        """The decorator of a checkpoint asset: a run per cutoff (each trains every seed), on the
        training step's GPUs, with the weights and sidecar checks."""
        return asset(name=name, partitions_def=cutoffs_def,
                     backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1), deps=deps,
                     group_name=TRAINING_GROUP, code_version=code_version, kinds={"pytorch"},
                     op_tags=gpu_tags, check_specs=_check_specs(name, cutoffs_def), **kwargs)

    @checkpoint_asset(PRETRAINED_CHECKPOINT, [TRAINING_SET], training_code_version(settings, "pretrain"))
    def pretrained_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """Self-supervised pretraining (the pretrain config's objective: masked, contrastive or both) per seed on the bars before the cutoff (fit, then purged validation)."""
        from plusultra_core.training.runner import run_pretraining

        yield from train_stage(context, store, "pretrained", run_pretraining, "pretrain")

    @checkpoint_asset(
        SUPERVISED_CHECKPOINT,
        # without pretraining the asset has no pretrained parent: the graph shows what the model started from
        [TRAINING_SET, PRETRAINED_CHECKPOINT] if training.pretrain else [TRAINING_SET],
        training_code_version(settings, "train"),
        description=None if training.pretrain else
        "CompositeTradingLoss fine-tune per seed from a cold start (training.pretrain is false), or, with "
        "incremental retraining, from the previous cutoff's supervised checkpoint.",
    )
    def supervised_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """CompositeTradingLoss fine-tune per seed, warm-started from the same cutoff and seed's pretrained checkpoint
        (or, with incremental retraining, from the previous cutoff's supervised one)."""
        from plusultra_core.training.runner import run_training

        yield from train_stage(context, store, "supervised", run_training, "train")

    pretraining = (pretrained_checkpoint,) if training.pretrain else ()  # training.pretrain: false = cold start
    if not training.rl_enabled:
        return (*pretraining, supervised_checkpoint)

    @checkpoint_asset(RL_CHECKPOINT, [TRAINING_SET, SUPERVISED_CHECKPOINT], rl_code_version(settings))
    def rl_checkpoint(context: AssetExecutionContext, store: PartitionStore):
        """PPO fine-tune per seed of the same cutoff and seed's supervised policy on the execution simulator (net PnL minus a risk term), selected on the purged validation slice."""
        fit = rl_fit(settings, store.root, context.partition_key, context.log)
        yield from train_cutoff(settings, store, context.partition_key, "rl", fit, context.log)

    return (*pretraining, supervised_checkpoint, rl_checkpoint)
