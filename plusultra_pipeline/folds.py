"""Walk-forward folds and the leaderboard, as plain functions: what the evaluation assets run.

`report_fold` is the `evaluation_report` asset's work for one cutoff: score every seed's model,
their ensemble and the baselines (and, with RL on, the RL fine-tunes) on ``[cutoff, next cutoff)``,
record each configuration in the store's trial ledger, write the fold's report and lineage, and
return the partition's materialisation and coverage check. `report_leaderboard` re-books every
evaluated fold as one continuous record (the deflated Sharpe counting every configuration the
ledger has seen) and writes its report. `load_leaderboard` and `load_benchmark` are what the CLI
and the benchmarks read the same record with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dagster import AssetCheckResult, DataVersion, Failure, MaterializeResult, MetadataValue

from plusultra_pipeline.events import file_version
from plusultra_pipeline.layout import (LINEAGE_FILE, FOLD_DATA, checkpoint_paths, fold_dir, fold_dirs,
                                       leaderboard_dir, trials_dir)
from plusultra_pipeline.metadata import table
from plusultra_pipeline.reconciling import evaluation_cost_bps
from plusultra_pipeline.resources import PartitionStore
from plusultra_pipeline.settings import PipelineSettings
from plusultra_pipeline.training_data import load_frame_until

COVERAGE_CHECK = "fold_coverage"
# Calendar days read after a fold's end so its last decision has its next bar (holidays included).
OUTCOME_PADDING_DAYS = 20


def load_benchmark(settings: PipelineSettings, database: str | Path) -> pd.Series | None:
    """Daily returns of the configured benchmark (``None`` when the database has none)."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

    with SQLiteMarketDataset(database) as dataset:
        returns = dataset.benchmark_returns(settings.evaluation.benchmark)
    return returns if len(returns) else None


def load_leaderboard(settings: PipelineSettings, store_root):
    """``(leaderboard, fold dirs, trial statistics)`` over every evaluated fold of the store at
    ``store_root``; ``None`` board if there is none."""
    from plusultra_core.evaluation import FoldResult, build_leaderboard
    from plusultra_core.evaluation.trials import trial_statistics

    dirs = fold_dirs(store_root)
    trials = trial_statistics(trials_dir(store_root), declared=settings.evaluation.declared_trials)
    if not dirs:
        return None, [], trials
    board = build_leaderboard([FoldResult.from_files(d / FOLD_DATA) for d in dirs], n_trials=trials.n_trials,
                              trial_sharpe_variance=trials.sharpe_variance,
                              cost_grid=settings.evaluation.cost_grid)
    return board, dirs, trials



@dataclass(frozen=True)
class LeaderboardView:
    """The leaderboard of a store with its research summary: what the asset, ``plusultra demo``
    and the pretraining comparison report."""

    board: object  # plusultra_core.evaluation.Leaderboard
    fold_dirs: list
    trials: object  # plusultra_core.evaluation.trials.TrialStatistics
    benchmark: pd.Series | None
    summary: object  # plusultra_core.evaluation.research.ResearchSummary


def leaderboard_view(settings: PipelineSettings, store_root, database: str | Path) -> LeaderboardView | None:
    """`load_leaderboard` of the store at ``store_root`` plus its `research_summary` (benchmark
    from ``database``, the DSR over every trial in the ledger); ``None`` with no evaluated fold."""
    from plusultra_core.evaluation.research import research_summary

    board, dirs, trials = load_leaderboard(settings, store_root)
    if board is None:
        return None
    benchmark = load_benchmark(settings, database)
    summary = research_summary(board.daily, board.positions, board.model_name, board.model_strategies,
                               benchmark=benchmark, n_trials=trials.n_trials,
                               trial_variance=trials.sharpe_variance,
                               significance=settings.evaluation.significance)
    return LeaderboardView(board, dirs, trials, benchmark, summary)

def _member_names(architecture: str, seeds) -> tuple[list[str], str | None]:
    """Strategy names of the seed models and of their ensemble (None for a single seed)."""
    if len(seeds) == 1:
        return [architecture], None
    return [f"{architecture}/seed={s}" for s in seeds], f"{architecture}/ensemble"


def evaluate_cutoff(settings: PipelineSettings, store, cutoff: str, next_cutoff: str):
    """Predict the fold's out-of-sample period with every seed's checkpoint; compare with baselines.

    With RL on, every seed's RL checkpoint is scored too, as its own strategy (``<arch>/rl``, its
    seeds and their ensemble) on the same symbol-days. Returns ``(FoldResult, checkpoint paths,
    their sidecars)``, supervised first, then RL.
    """
    from plusultra_core.evaluation import evaluate_fold
    from plusultra_core.inference.predict import load_supervised, predict_frame

    seeds = settings.training.seeds
    paths = checkpoint_paths(store.root, "supervised", cutoff, seeds)
    rl_paths = checkpoint_paths(store.root, "rl", cutoff, seeds) if settings.training.rl_enabled else []
    loaded = [load_supervised(p) for p in paths]
    rl_loaded = [load_supervised(p) for p in rl_paths]
    start, stop = pd.Timestamp(cutoff), pd.Timestamp(next_cutoff)
    end = stop - pd.Timedelta(days=1)
    frame, _ = load_frame_until(store, stop + pd.Timedelta(days=OUTCOME_PADDING_DAYS), settings.history.period)
    sidecars = [side for _, side in loaded]
    train_end = max(pd.Timestamp(side["train_range"][1]) for side in sidecars + [s for _, s in rl_loaded])
    if train_end >= start:  # the graph guarantees it; a report must never be in-sample
        raise Failure(description=f"a checkpoint of cutoff {cutoff} was trained up to {train_end.date()}, "
                                  f"inside its evaluation period starting {start.date()}")
    names, ensemble = _member_names(sidecars[0].get("architecture", "model"), seeds)
    features = list(sidecars[0]["feature_names"])

    def predict(pairs, strategy_names):
        return {name: predict_frame(module, frame, list(side["feature_names"]),
                                    context_length=int(side["context_length"]), start=start, end=end,
                                    zscore=bool(side.get("zscore", False)))
                for name, (module, side) in zip(strategy_names, pairs)}

    predictions = predict(loaded, names)
    # the RL fine-tunes are their own strategy, <arch>/rl (per seed, and their ensemble)
    rl_names, rl_ensemble = (_member_names(f"{sidecars[0].get('architecture', 'model')}/rl", seeds)
                             if rl_loaded else ([], None))
    cost_bps, _ = evaluation_cost_bps(settings, store)
    result = evaluate_fold(predictions if len(names) > 1 else predictions[names[0]], frame, start, stop,
                           cost_bps=cost_bps, baselines=tuple(settings.evaluation.baselines),
                           feature_names=features, train_end=train_end, purge=settings.training.purge_bars,
                           model_name=names[0], ensemble_name=ensemble,
                           challengers=predict(rl_loaded, rl_names) or None, challenger_ensemble=rl_ensemble)
    return result, paths + rl_paths, sidecars + [side for _, side in rl_loaded]


def record_trials(settings: PipelineSettings, store_root, result, cutoff: str, sidecars: list[dict]) -> list[str]:
    """Append this fold's configurations to the trial ledger of the store at ``store_root``: each
    seed model, their ensemble, and with RL on each RL fine-tune and their ensemble (the DSR counts
    every configuration tried)."""
    from plusultra_core.config import config_hash
    from plusultra_core.evaluation.trials import configuration_hash, record_trial, trial_id

    arch = sidecars[0].get("architecture", "model")
    members = list(result.model_strategies)
    hashes = [configuration_hash(side.get("config", {})) for side in sidecars[:len(members)]]
    rivals, rival_sides = result.info.get("challengers") or [], sidecars[len(members):]
    rl_hashes = [configuration_hash({**side.get("config", {}), "rl": side.get("rl_config", {})}) for side in rival_sides]
    # (architecture, config hash, member, strategy column of result.daily)
    tried = [(arch, h, f"seed={side.get('seed', 0)}", name) for name, side, h in zip(members, sidecars, hashes)]
    if len(members) > 1 and result.model_name not in members:  # the ensemble is a configuration too
        tried.append((arch, config_hash({"members": sorted(hashes)}), "ensemble", result.model_name))
    tried += [(f"{arch}/rl", h, f"seed={side.get('seed', 0)}", name) for name, side, h in zip(rivals, rival_sides, rl_hashes)]
    if result.info.get("challenger_ensemble"):
        tried.append((f"{arch}/rl", config_hash({"members": sorted(rl_hashes)}), "ensemble",
                      result.info["challenger_ensemble"]))
    ids = []
    for architecture, cfg_hash, member, column in tried:
        ids.append(trial_id(architecture, cfg_hash, member))
        record_trial(trials_dir(store_root), ids[-1],
                     {"architecture": architecture, "config_hash": cfg_hash, "member": member}, cutoff,
                     result.daily[column])
    return ids


def _numbers(summary) -> dict:
    """The primary strategy's headline statistics as floats (chartable across partitions)."""
    row = summary.table.loc[summary.primary]
    keys = ("sharpe", "sharpe_ci_low", "sharpe_ci_high", "sharpe_diff_vs_bh", "p_vs_bh", "total_return_pct",
            "max_drawdown_pct", "ic", "ic_t", "dsr")
    return {f"{k}": round(float(row[k]), 4) for k in keys if k in row and pd.notna(row[k])}


def _rl_numbers(summary, result) -> dict:
    """With RL on: the RL strategy's (its ensemble's) Sharpe beside the primary's, chartable per fold."""
    rivals = result.info.get("challengers") or []
    name = result.info.get("challenger_ensemble") or (rivals[0] if rivals else None)
    if name is None or name not in summary.table.index or pd.isna(summary.table.loc[name, "sharpe"]):
        return {}
    return {"rl_strategy": name, "rl_sharpe": round(float(summary.table.loc[name, "sharpe"]), 4)}


def coverage_check(coverage: dict) -> AssetCheckResult:
    """A fold passes when every decision day with a next bar was scored (and there are any)."""
    days = int(coverage.get("decision_days", 0))
    scored, no_next = int(coverage.get("scored_days", 0)), int(coverage.get("unscored_days_no_next_bar", 0))
    no_model = int(coverage.get("unscored_days_no_model_position", 0))
    return AssetCheckResult(check_name=COVERAGE_CHECK, passed=days > 0 and no_model == 0 and scored + no_next == days,
                            metadata={"decision_days": days, "scored_days": scored,
                                      "unscored_no_next_bar": no_next, "unscored_no_model_position": no_model,
                                      "examples": MetadataValue.text(str(coverage.get("unscored_day_examples") or "none"))})



def report_fold(settings: PipelineSettings, store: PartitionStore, database: str | Path, cutoff: str,
                next_cutoff: str, log) -> tuple[MaterializeResult, AssetCheckResult]:
    """Evaluate the fold ``[cutoff, next_cutoff)`` and write its report under `layout.fold_dir`.

    Records the fold's configurations in the trial ledger, writes the report files and the
    lineage JSON (checkpoints, their creation times, data and feature versions, ranges), logs the
    verdict to ``log`` and returns the fold's materialisation (headline numbers, statistics table,
    report; data version = the saved fold data's files) and its `coverage_check`.
    """
    from plusultra_core.evaluation._io import text_writer, write_files_atomically
    from plusultra_core.evaluation.report import fold_markdown, write_fold_report
    from plusultra_core.evaluation.research import research_summary

    result, paths, sidecars = evaluate_cutoff(settings, store.store(), cutoff, next_cutoff)
    record_trials(settings, store.root, result, cutoff, sidecars)
    benchmark = load_benchmark(settings, database)
    summary = research_summary(result.daily, result.positions, result.model_name, result.model_strategies,
                               benchmark=benchmark, significance=settings.evaluation.significance)
    out = fold_dir(store.root, cutoff)
    title = f"Fold {cutoff} .. {next_cutoff} (out-of-sample)"
    files = write_fold_report(result, out, title=title, summary=summary, benchmark=benchmark)
    lineage = {"checkpoints": [str(p) for p in paths],
               "checkpoints_created_at": [side.get("created_at") for side in sidecars],
               "data_version": sidecars[0].get("data_version"), "feature_hash": sidecars[0].get("feature_hash"),
               "train_range": sidecars[0].get("train_range"), "fit_range": sidecars[0].get("fit_range"),
               "oos_period": [cutoff, next_cutoff]}
    write_files_atomically({out / LINEAGE_FILE: text_writer(json.dumps(lineage, indent=2, default=str))})
    log.info(summary.verdict)
    coverage = result.info.get("coverage", {})
    report = MaterializeResult(metadata={
        "verdict": MetadataValue.text(summary.verdict),
        **_numbers(summary),
        **_rl_numbers(summary, result),
        "oos_period": f"{cutoff} .. {next_cutoff} (exclusive)",
        "coverage": MetadataValue.json(result.info.get("coverage", {})),
        "train_range": " .. ".join(map(str, sidecars[0].get("train_range", []))),
        "checkpoints": MetadataValue.json([str(p) for p in paths]),
        "cost_bps": result.cost_bps,
        "cost_source": evaluation_cost_bps(settings, store.store())[1],
        "statistics": table(summary.table.round(4).reset_index()),
        "report": MetadataValue.md(fold_markdown(result, title, summary=summary, image=files.png_uri)),
        "report_path": MetadataValue.path(str(files.markdown)),
        "html_path": MetadataValue.path(str(files.html)),
    }, data_version=DataVersion(file_version(sorted((out / FOLD_DATA).glob("*")))))
    return report, coverage_check(coverage)


def report_leaderboard(settings: PipelineSettings, store: PartitionStore, database: str | Path,
                       log) -> MaterializeResult:
    """Re-book every evaluated fold of ``store`` as one record per strategy and write its report
    under `layout.leaderboard_dir`; log the verdict to ``log`` and return the materialisation
    (verdict, headline numbers, DSR trials, statistics, cost sensitivity, coverage, report).

    Raises `Failure` when no fold has been evaluated.
    """
    from plusultra_core.evaluation.report import leaderboard_markdown, write_leaderboard_report

    view = leaderboard_view(settings, store.root, database)
    if view is None:
        raise Failure(description=f"no evaluated folds under {store.root}; "
                                  "materialise evaluation_report first")
    board, dirs, trials, benchmark, summary = view.board, view.fold_dirs, view.trials, view.benchmark, view.summary
    files = write_leaderboard_report(board, leaderboard_dir(store.root), summary=summary,
                                     trials=trials, benchmark=benchmark)
    log.info(summary.verdict)
    return MaterializeResult(metadata={
        "verdict": MetadataValue.text(summary.verdict),
        **_numbers(summary),
        "folds": len(dirs),
        "dsr_trials": trials.n_trials,
        "dsr_trial_variance": round(float(trials.sharpe_variance), 8) if trials.sharpe_variance else 0.0,
        "statistics": table(summary.table.round(4).reset_index()),
        "cost_sensitivity": table(board.cost_sensitivity.round(4).reset_index()),
        "coverage": table(board.coverage.reset_index()),
        "report": MetadataValue.md(leaderboard_markdown(board, summary=summary, trials=trials, image=files.png_uri)),
        "report_path": MetadataValue.path(str(files.markdown)),
        "html_path": MetadataValue.path(str(files.html)),
    })
