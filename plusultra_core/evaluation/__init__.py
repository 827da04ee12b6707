"""Out-of-sample evaluation: baselines, walk-forward folds, the leaderboard, and reports.

A fold scores model strategies (one per seed, optionally their ensemble) and the baselines on the
fold's out-of-sample period, net of costs, and records their decisions (`evaluate_fold` ->
`FoldResult`); `build_leaderboard` re-books every fold's decisions as one continuous track record
with stated coverage; both book with `book.book_decisions`. `write_fold_report` and
`write_leaderboard_report` render Markdown, HTML and an equity/drawdown PNG. Nothing here runs a
model or imports Dagster; matplotlib is imported only when a plot is drawn.
"""

from plusultra_core.evaluation.baselines import (BASELINES, LinearFit, apply_linear, buy_and_hold,
                                                 fit_linear, linear_model, momentum_rule)
from plusultra_core.evaluation.book import (DECISION_COLUMNS, EXPOSURE_MATCHED, Book,
                                            book_decisions, coverage_table, reprice)
from plusultra_core.evaluation.fold import DEFAULT_BASELINES, FoldResult, evaluate_fold
from plusultra_core.evaluation.leaderboard import DEFAULT_COST_GRID, Leaderboard, build_leaderboard
from plusultra_core.evaluation.report import (ReportFiles, fold_markdown, leaderboard_markdown,
                                              markdown_with_inline_png, png_data_uri,
                                              write_fold_report, write_leaderboard_report)

__all__ = ["BASELINES", "Book", "DECISION_COLUMNS", "DEFAULT_BASELINES", "DEFAULT_COST_GRID",
           "EXPOSURE_MATCHED", "FoldResult", "Leaderboard", "LinearFit", "ReportFiles",
           "apply_linear", "book_decisions", "build_leaderboard", "buy_and_hold", "coverage_table",
           "evaluate_fold", "fit_linear", "fold_markdown", "leaderboard_markdown", "linear_model",
           "markdown_with_inline_png", "momentum_rule", "png_data_uri", "reprice",
           "write_fold_report", "write_leaderboard_report"]
