"""Out-of-sample evaluation: baselines, walk-forward folds, the leaderboard, and reports.

A fold scores a model's predictions frame and the baselines on the fold's out-of-sample period,
net of costs (`evaluate_fold` -> `FoldResult`); `build_leaderboard` chains folds into one track
record per strategy; `write_fold_report` / `write_leaderboard_report` render Markdown, HTML and
an equity/drawdown PNG. Nothing here runs a model or imports Dagster; matplotlib is imported only
when a plot is drawn.
"""

from plusultra_core.evaluation.baselines import (BASELINES, LinearFit, apply_linear, buy_and_hold,
                                                 fit_linear, linear_model, momentum_rule)
from plusultra_core.evaluation.fold import DEFAULT_BASELINES, FoldResult, evaluate_fold
from plusultra_core.evaluation.leaderboard import Leaderboard, build_leaderboard
from plusultra_core.evaluation.report import (ReportFiles, fold_markdown, leaderboard_markdown,
                                              markdown_with_inline_png, png_data_uri,
                                              write_fold_report, write_leaderboard_report)

__all__ = ["BASELINES", "DEFAULT_BASELINES", "FoldResult", "Leaderboard", "LinearFit", "ReportFiles",
           "apply_linear", "build_leaderboard", "buy_and_hold", "evaluate_fold", "fit_linear",
           "fold_markdown", "leaderboard_markdown", "linear_model", "markdown_with_inline_png",
           "momentum_rule", "png_data_uri", "write_fold_report", "write_leaderboard_report"]
