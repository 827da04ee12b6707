"""Out-of-sample evaluation: baselines, walk-forward folds, the leaderboard, and reports.

A fold scores a model's predictions frame and the baselines on the fold's out-of-sample period,
net of costs (`evaluate_fold` -> `FoldResult`); `build_leaderboard` chains folds into one track
record per strategy; `write_fold_report` / `write_leaderboard_report` render Markdown, HTML and
an equity/drawdown PNG. Nothing here runs a model or imports Dagster.
"""

from plusultra_core.evaluation.baselines import (BASELINES, LinearFit, apply_linear, buy_and_hold,
                                                 fit_linear, linear_model, momentum_rule)
from plusultra_core.evaluation.fold import DEFAULT_BASELINES, FoldResult, evaluate_fold

__all__ = ["BASELINES", "DEFAULT_BASELINES", "LinearFit", "FoldResult", "apply_linear",
           "buy_and_hold", "evaluate_fold", "fit_linear", "linear_model", "momentum_rule"]
