"""Out-of-sample evaluation: baselines, walk-forward folds, the leaderboard, and reports.

A fold scores model strategies (one per seed, optionally their ensemble) and the baselines on the
fold's out-of-sample period, net of costs, and records their decisions (`evaluate_fold` ->
`FoldResult`); `build_leaderboard` re-books every fold's decisions as one continuous track record
with stated coverage; both book with `book.book_decisions`. `write_fold_report` and
`write_leaderboard_report` render Markdown, HTML and an equity/drawdown PNG. Nothing here runs a
model or imports Dagster; matplotlib is imported only when a plot is drawn.
"""

from plusultra_core.lazy_exports import lazy_exports

# name -> submodule. Loaded on first use (PEP 562), so that importing a light submodule such as
# `plusultra_core.evaluation.trials` (the pipeline hashes configurations when its definitions
# load) does not import the booking code and, through `losses.pnl_stream`, torch.
_EXPORTS = {
    **dict.fromkeys(["BASELINES", "LinearFit", "apply_linear", "buy_and_hold", "fit_linear", "linear_model",
                     "momentum_rule"], "baselines"),
    **dict.fromkeys(["DECISION_COLUMNS", "EXPOSURE_MATCHED", "Book", "book_decisions", "coverage_table",
                     "reprice"], "book"),
    **dict.fromkeys(["DEFAULT_BASELINES", "FoldResult", "evaluate_fold"], "fold"),
    **dict.fromkeys(["DEFAULT_COST_GRID", "Leaderboard", "build_leaderboard"], "leaderboard"),
    **dict.fromkeys(["ReportFiles", "fold_markdown", "leaderboard_markdown", "markdown_with_inline_png",
                     "png_data_uri", "write_fold_report", "write_leaderboard_report"], "report"),
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
