"""Evaluation group: the out-of-sample report of each walk-forward fold, and the leaderboard."""

from pathlib import Path

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from plusultra_pipeline.assets.training import checkpoint_path
from plusultra_pipeline.constants import (
    EVALUATION_GROUP,
    EVALUATION_REPORT,
    LEADERBOARD,
    SUPERVISED_CHECKPOINT,
    WINDOW_TENSORS,
)
from plusultra_pipeline.metadata import table
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings
from plusultra_pipeline.training_data import load_frame_until

REPORTS_DIR = "reports"
FOLD_DATA = "data"  # positions, returns and metrics of a fold, written beside its report
LINEAGE_FILE = "lineage.json"  # which checkpoint (and which write of it) a fold report was built from


def write_json_atomic(path: Path, payload: dict) -> None:
    import json
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def fold_dir(store_root, cutoff: str) -> Path:
    return Path(store_root) / REPORTS_DIR / "folds" / f"cutoff={cutoff}"


def leaderboard_dir(store_root) -> Path:
    return Path(store_root) / REPORTS_DIR / "leaderboard"


def load_leaderboard(store_root):
    """The leaderboard over every evaluated fold in the store (``None`` if there is none)."""
    from plusultra_core.evaluation import FoldResult, build_leaderboard

    base = Path(store_root) / REPORTS_DIR / "folds"
    dirs = sorted(d for d in base.glob("cutoff=*") if (d / FOLD_DATA).is_dir()) if base.is_dir() else []
    if not dirs:
        return None, []
    return build_leaderboard([FoldResult.from_files(d / FOLD_DATA) for d in dirs]), dirs


def evaluate_cutoff(settings: PipelineSettings, store, cutoff: str, next_cutoff: str):
    """Predict the fold's out-of-sample period with the cutoff's checkpoint; compare with baselines."""
    from plusultra_core.evaluation import evaluate_fold
    from plusultra_core.inference.predict import load_supervised, predict_frame

    ckpt = checkpoint_path(settings.store_path, "supervised", cutoff)
    module, sidecar = load_supervised(ckpt)
    start = pd.Timestamp(cutoff)
    end = pd.Timestamp(next_cutoff) - pd.Timedelta(days=1)
    frame, names = load_frame_until(store, next_cutoff, settings.history.period)
    train_end = pd.Timestamp(sidecar["train_range"][1])
    if train_end >= start:  # the graph guarantees it; a report must never be in-sample
        raise Failure(description=f"checkpoint {ckpt} was trained up to {train_end.date()}, "
                                  f"inside its evaluation period starting {start.date()}")
    features = list(sidecar["feature_names"])
    predictions = predict_frame(module, frame, features, context_length=int(sidecar["context_length"]),
                                start=start, end=end, zscore=bool(sidecar.get("zscore", False)))
    # evaluate_fold takes the half-open period [cutoff, next cutoff)
    result = evaluate_fold(predictions, frame, start, pd.Timestamp(next_cutoff), cost_bps=settings.evaluation.cost_bps,
                           baselines=tuple(settings.evaluation.baselines), feature_names=features,
                           train_end=train_end, purge=settings.training.purge_bars,
                           model_name=sidecar.get("architecture", "model"))
    return result, ckpt, sidecar


def build_evaluation_assets(settings: PipelineSettings, cutoffs_def):
    @asset(
        name=EVALUATION_REPORT,
        partitions_def=cutoffs_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        ins={SUPERVISED_CHECKPOINT: AssetIn(dagster_type=Nothing),
             WINDOW_TENSORS: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing)},
        group_name=EVALUATION_GROUP,
        code_version="1",
        kinds={"pandas", "matplotlib"},
    )
    def evaluation_report(context: AssetExecutionContext, store: PartitionStore):
        """Out-of-sample fold report: the cutoff's model from the cutoff to the next one, net of costs, beside baselines."""
        from plusultra_core.evaluation import fold_markdown, png_data_uri, write_fold_report

        window = context.partition_time_window
        cutoff, next_cutoff = str(window.start.date()), str(window.end.date())
        result, ckpt, sidecar = evaluate_cutoff(settings, store.store(), cutoff, next_cutoff)
        out = fold_dir(settings.store_path, cutoff)
        title = f"Fold {cutoff} .. {next_cutoff} (out-of-sample)"
        files = write_fold_report(result, out, title=title)
        write_json_atomic(out / LINEAGE_FILE, {
            "checkpoint": str(ckpt), "checkpoint_created_at": sidecar.get("created_at"),
            "data_version": sidecar.get("data_version"), "feature_hash": sidecar.get("feature_hash"),
            "train_range": sidecar.get("train_range"), "oos_period": [cutoff, next_cutoff]})
        return MaterializeResult(metadata={
            "oos_period": f"{cutoff} .. {next_cutoff} (exclusive)",
            "train_range": " .. ".join(map(str, sidecar.get("train_range", []))),
            "checkpoint": MetadataValue.path(str(ckpt)),
            "cost_bps": settings.evaluation.cost_bps,
            "metrics": table(result.metrics.reset_index()),
            # the same report as the file, with the plot inlined so the UI can show it
            "report": MetadataValue.md(fold_markdown(result, title, image=png_data_uri(files.png.read_bytes()))),
            "report_path": MetadataValue.path(str(files.markdown)),
            "html_path": MetadataValue.path(str(files.html)),
        })

    @asset(
        name=LEADERBOARD,
        ins={EVALUATION_REPORT: AssetIn(partition_mapping=AllPartitionMapping(), dagster_type=Nothing)},
        group_name=EVALUATION_GROUP,
        code_version="1",
        kinds={"pandas", "matplotlib"},
    )
    def leaderboard(context: AssetExecutionContext):
        """Every materialised fold joined into one out-of-sample track record per model and baseline, with PSR/DSR."""
        from plusultra_core.evaluation import leaderboard_markdown, png_data_uri, write_leaderboard_report

        board, dirs = load_leaderboard(settings.store_path)
        if board is None:
            raise Failure(description=f"no evaluated folds under {settings.store_path / REPORTS_DIR}; "
                                      "materialise evaluation_report first")
        files = write_leaderboard_report(board, leaderboard_dir(settings.store_path))
        context.log.info("\n" + board.to_text())
        return MaterializeResult(metadata={
            "folds": len(dirs),
            "leaderboard": table(board.table.reset_index()),
            "report": MetadataValue.md(leaderboard_markdown(board, image=png_data_uri(files.png.read_bytes()))),
            "report_path": MetadataValue.path(str(files.markdown)),
            "html_path": MetadataValue.path(str(files.html)),
        })

    return evaluation_report, leaderboard
