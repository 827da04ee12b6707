"""Fold and leaderboard reports: Markdown + self-contained HTML + an equity/drawdown PNG.

A fold report directory holds ``report.md`` (metrics table, the PNG as a relative link, period,
costs, strategies), ``report.html`` (the same, with the PNG inlined as a base64 data URI so the
one file can be mailed or archived), ``equity.png`` and, under ``data/``, the fold's saved
positions and returns (`FoldResult.to_files`) from which every number can be recomputed. All
files are staged under temp names and renamed together: a killed run leaves the previous report
or the new one. `markdown_with_inline_png` gives Markdown with the PNG inlined, which the Dagster
UI renders in asset metadata.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plusultra_core.evaluation._format import SHORT_NAMES, html_table, markdown_table
from plusultra_core.evaluation._io import bytes_writer, text_writer, write_files_atomically
from plusultra_core.evaluation.baselines import BASELINES
from plusultra_core.evaluation.fold import FoldResult
from plusultra_core.evaluation.leaderboard import TEXT_COLUMNS, Leaderboard
from plusultra_core.evaluation.plots import equity_drawdown_png

__all__ = ["ReportFiles", "write_fold_report", "write_leaderboard_report", "markdown_with_inline_png",
           "fold_markdown", "leaderboard_markdown", "png_data_uri"]

PNG_NAME = "equity.png"
CONVENTIONS = (
    "Out-of-sample only. A position decided at the close of day t earns the same symbol's next-bar "
    "return; cost = cost_bps x |position change| (entry from flat at the fold start). Portfolio = "
    "equal weight over the symbols the model holds a view on that day; baselines are scored on "
    "the same symbol-days. Metrics follow empyrical (252 days a year, risk-free 0)."
)


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by a report: ``markdown``, ``html``, ``png``, and ``paths`` (every file)."""

    markdown: Path
    html: Path
    png: Path
    paths: tuple[Path, ...]


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes (for Markdown/HTML that must stand alone)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_with_inline_png(png, body: str = "", alt: str = "equity and drawdown") -> str:
    """``body`` followed by the PNG (bytes or a path) embedded as a base64 data URI image."""
    data = Path(png).read_bytes() if isinstance(png, (str, Path)) else bytes(png)
    return f"{body.rstrip()}\n\n![{alt}]({png_data_uri(data)})\n".lstrip("\n")


def _strategy_lines(result: FoldResult) -> list[str]:
    lines = [f"- `{result.model_name}`: the model under evaluation"]
    for name in result.strategies[1:]:
        extra = ""
        if name == "momentum" and "momentum" in result.info:
            extra = f" (lookback {result.info['momentum']['lookback']} bars)"
        if name == "linear" and "linear" in result.info:
            lin = result.info["linear"]
            extra = (f" (ridge {lin['ridge']:g}, {lin['n_train']} training pairs, last target "
                     f"{str(lin['last_target_time'])[:10]}, purge {lin['purge_bars']} bars, sizing {lin['sizing']})")
        lines.append(f"- `{name}`: {BASELINES.get(name, 'baseline')}{extra}")
    return lines


def _fold_metrics_table(result: FoldResult) -> pd.DataFrame:
    # metrics as rows, strategies as columns: a few strategies side by side reads best
    return result.metrics.T.rename(index=SHORT_NAMES)


def fold_markdown(result: FoldResult, title: str, image: str = PNG_NAME) -> str:
    """The fold report's Markdown; ``image`` is the link target of the equity/drawdown PNG."""
    start, end = result.period
    days = result.daily.index
    span = f"{days[0].date()} .. {days[-1].date()}" if len(days) else "none"
    lines = [
        f"# {title}", "",
        f"- Decision period: [{start.date()}, {end.date()}) -- returns realised {span} ({len(days)} days)",
        f"- Costs: {result.cost_bps:g} bps per unit of |position change|",
        f"- Universe: {result.info.get('n_symbols', '?')} symbols, "
        f"{result.info.get('n_evaluated', '?')} evaluated symbol-days",
        "- Strategies:", *("  " + line for line in _strategy_lines(result)), "",
        "## Metrics", "", markdown_table(_fold_metrics_table(result), "metric"),
        "## Equity and drawdown", "", f"![equity and drawdown]({image})", "",
        "## Conventions", "", CONVENTIONS, "",
    ]
    return "\n".join(lines)


def leaderboard_markdown(board: Leaderboard, title: str = "Out-of-sample leaderboard",
                         image: str = PNG_NAME) -> str:
    """The leaderboard report's Markdown; ``image`` is the link target of the PNG."""
    start, end = board.period
    table = board.table[[c for c in TEXT_COLUMNS if c in board.table.columns]].rename(columns=SHORT_NAMES)
    folds = board.folds.assign(start=board.folds["start"].dt.date.astype(str),
                               end=board.folds["end"].dt.date.astype(str))
    lines = [
        f"# {title}", "",
        f"- Period: [{start.date()}, {end.date()}), {len(board.folds)} walk-forward folds, "
        f"{len(board.daily)} out-of-sample days",
        f"- Costs: {board.cost_bps:g} bps per unit of |position change|",
        f"- Strategies: {', '.join(f'`{s}`' for s in board.daily.columns)}",
        f"- DSR: deflated against the best of {board.n_trials} trials (the strategies compared; a lower "
        "bound -- every configuration tried in research is a trial too)", "",
        "## Ranking (by Sharpe)", "", markdown_table(table, "strategy"),
        "## Equity and drawdown", "", f"![equity and drawdown]({image})", "",
        "## Folds", "", markdown_table(folds.set_index("start"), "start"),
        "## Conventions", "", CONVENTIONS, "",
    ]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}")


def _html(title: str, facts: list[str], tables: list[tuple[str, str]], png: bytes) -> str:
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    body = "".join(f"<h2>{html.escape(h)}</h2>{t}" for h, t in tables)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><ul>{items}</ul>"
            f"{body}<h2>Equity and drawdown</h2><img alt='equity and drawdown' src='{png_data_uri(png)}'>"
            f"<h2>Conventions</h2><p>{html.escape(CONVENTIONS)}</p></body></html>\n")


def _facts(markdown: str) -> list[str]:
    """The top bullet list of a report's Markdown, as plain strings for the HTML page."""
    return [line.strip()[2:].replace("`", "") for line in markdown.split("## ")[0].splitlines()
            if line.strip().startswith("- ")]


def write_fold_report(result: FoldResult, directory, title: str) -> ReportFiles:
    """Write ``report.md``, ``report.html``, ``equity.png`` and ``data/`` (the fold's files)."""
    directory = Path(directory)
    png = equity_drawdown_png(result.daily, title)
    markdown = fold_markdown(result, title)
    page = _html(title, _facts(markdown), [("Metrics", html_table(_fold_metrics_table(result), "metric"))], png)
    paths = ReportFiles(markdown=directory / "report.md", html=directory / "report.html",
                        png=directory / PNG_NAME, paths=())
    written = write_files_atomically({
        paths.png: bytes_writer(png), paths.markdown: text_writer(markdown),
        paths.html: text_writer(page), **result.file_writers(directory / "data")})
    return ReportFiles(paths.markdown, paths.html, paths.png, tuple(written))


def write_leaderboard_report(board: Leaderboard, directory,
                             title: str = "Out-of-sample leaderboard") -> ReportFiles:
    """Write ``leaderboard.md``, ``leaderboard.html``, ``equity.png`` and ``leaderboard.csv``."""
    directory = Path(directory)
    png = equity_drawdown_png(board.daily, title)
    markdown = leaderboard_markdown(board, title)
    ranking = board.table[[c for c in TEXT_COLUMNS if c in board.table.columns]].rename(columns=SHORT_NAMES)
    folds = board.folds.assign(start=board.folds["start"].dt.date.astype(str),
                               end=board.folds["end"].dt.date.astype(str)).set_index("start")
    page = _html(title, _facts(markdown), [("Ranking (by Sharpe)", html_table(ranking, "strategy")),
                                          ("Folds", html_table(folds, "start"))], png)
    paths = ReportFiles(markdown=directory / "leaderboard.md", html=directory / "leaderboard.html",
                        png=directory / PNG_NAME, paths=())
    written = write_files_atomically({
        paths.png: bytes_writer(png), paths.markdown: text_writer(markdown), paths.html: text_writer(page),
        directory / "leaderboard.csv": text_writer(board.table.to_csv()),
        directory / "daily.csv": text_writer(board.daily.to_csv())})
    return ReportFiles(paths.markdown, paths.html, paths.png, tuple(written))
