"""Fold and leaderboard reports: Markdown + self-contained HTML + an equity/drawdown PNG.

A fold report directory holds ``report.md`` (metrics table, the PNG as a relative link, period,
costs, strategies), ``report.html`` (the same, with the PNG inlined as a base64 data URI so the
one file can be mailed or archived), ``equity.png`` and, under ``data/``, the fold's saved
positions and returns (`FoldResult.to_files`) from which every number can be recomputed. All
files are staged under temp names and renamed together: a killed run leaves the previous report
or the new one. `markdown_with_inline_png` gives Markdown with the PNG inlined, which the Dagster
UI renders in asset metadata.

Given a `research.ResearchSummary`, a report opens with its verdict (the first line), adds the
statistics a reviewer asks for (Sharpe CI, difference vs buy-and-hold with its p-value, IC with
Newey-West t, benchmark alpha/beta, DSR), the seed spread, and the tearsheet (`tearsheet.png`
plus its tables).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plusultra_core import atomic
from plusultra_core.evaluation._format import SHORT_NAMES, html_table, markdown_table
from plusultra_core.evaluation.baselines import BASELINES
from plusultra_core.evaluation.book import EXPOSURE_MATCHED
from plusultra_core.evaluation.fold import FoldResult
from plusultra_core.evaluation.leaderboard import TEXT_COLUMNS, Leaderboard
from plusultra_core.evaluation.plots import equity_drawdown_png
from plusultra_core.evaluation.research import ResearchSummary

__all__ = ["ReportFiles", "write_fold_report", "write_leaderboard_report", "markdown_with_inline_png",
           "fold_markdown", "leaderboard_markdown", "png_data_uri", "research_text"]

PNG_NAME = "equity.png"
TEARSHEET_NAME = "tearsheet.png"
# statistics shown in reports (research.ResearchSummary.table keeps more), with short headers
STAT_COLUMNS = {"sharpe": "Sharpe", "sharpe_ci_low": "CI low", "sharpe_ci_high": "CI high",
                "sharpe_diff_vs_bh": "ΔSharpe vs B&H", "p_vs_bh": "p", "total_return_pct": "total %",
                "annual_return_pct": "CAGR %", "annual_vol_pct": "vol %", "max_drawdown_pct": "max DD %",
                "turnover": "turnover", "hit_rate_pct": "hit %", "ic": "IC", "ic_t": "IC t (NW)",
                "alpha_pct": "alpha %", "beta": "beta", "information_ratio": "IR", "dsr": "DSR", "days": "days"}
_RULES = (
    "Out-of-sample only. A position decided at the close of day t earns the same symbol's next-bar "
    "return; cost = cost_bps x |position change| ({booking}). Portfolio = equal weight over the "
    "symbols every model holds a view on that day; baselines are scored on the same symbol-days. "
    "buy_and_hold@exposure holds the primary strategy's average exposure over the period (a "
    "benchmark, not a tradable rule). Metrics follow empyrical (252 days a year, risk-free 0)."
)
CONVENTIONS = _RULES.format(booking="standalone: entry from flat at the fold start")
LEADERBOARD_CONVENTIONS = _RULES.format(
    booking="one continuous book across the folds: flat only before the first fold, no re-entry "
            "at a fold boundary")


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by a report: ``markdown``, ``html``, ``png``, and ``paths`` (every file)."""

    markdown: Path
    html: Path
    png: Path
    paths: tuple[Path, ...]

    @property
    def png_uri(self) -> str:
        """The equity/drawdown PNG as a data URI (for Markdown the Dagster UI renders inline)."""
        return png_data_uri(self.png.read_bytes())


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes (for Markdown/HTML that must stand alone)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_with_inline_png(png, body: str = "", alt: str = "equity and drawdown") -> str:
    """``body`` followed by the PNG (bytes or a path) embedded as a base64 data URI image."""
    data = Path(png).read_bytes() if isinstance(png, (str, Path)) else bytes(png)
    return f"{body.rstrip()}\n\n![{alt}]({png_data_uri(data)})\n".lstrip("\n")


def _strategy_lines(result: FoldResult) -> list[str]:
    models = result.model_strategies or [result.model_name]
    lines = []
    for name in result.strategies:
        extra = ""
        if name in models:
            what = "the model under evaluation" if len(models) == 1 else "a model under evaluation (one seed)"
        elif name == result.ensemble_name:
            what = f"seed ensemble: mean position and forecast of {len(models)} model strategies"
        elif name == EXPOSURE_MATCHED:
            exposure = result.info.get("exposure", {}).get("position", float("nan"))
            what = (f"constant position {exposure:.3g} = `{result.model_name}`'s mean net position over "
                    "the fold (a benchmark, not a tradable rule)")
        else:
            what = BASELINES.get(name, "baseline")
            if name == "momentum" and "momentum" in result.info:
                extra = f" (lookback {result.info['momentum']['lookback']} bars)"
            if name == "linear" and "linear" in result.info:
                lin = result.info["linear"]
                extra = (f" (ridge {lin['ridge']:g}, {lin['n_train']} training pairs, last target "
                         f"{str(lin['last_target_time'])[:10]}, purge {lin['purge_bars']} bars, sizing {lin['sizing']})")
        lines.append(f"- `{name}`: {what}{extra}")
    return lines


def _coverage_line(cov) -> str:
    """One sentence of a coverage row (`book.coverage_table`) or a fold's ``info["coverage"]``."""
    if cov is None or not len(cov):
        return "- Coverage: not recorded"
    line = (f"- Coverage: {int(cov['scored_days'])} of {int(cov['decision_days'])} decision days and "
            f"{int(cov['scored_symbol_days'])} of {int(cov['symbol_days'])} symbol-days scored; unscored "
            f"symbol-days: {int(cov['unscored_symbol_days_no_next_bar'])} no_next_bar, "
            f"{int(cov['unscored_symbol_days_no_model_position'])} no_model_position")
    examples = cov.get("unscored_day_examples") or cov.get("no_next_bar_examples") or \
        cov.get("no_model_position_examples")
    return line + (f" (e.g. {examples})" if examples else "")


def statistics_table(summary: ResearchSummary) -> pd.DataFrame:
    """The reviewer's statistics of every strategy, display columns only."""
    cols = [c for c in STAT_COLUMNS if c in summary.table.columns]
    return summary.table[cols].rename(columns=STAT_COLUMNS)


def _research_sections(summary: ResearchSummary | None, tearsheet_md: str = "") -> list[str]:
    if summary is None:
        return []
    lines = ["## Statistics", "",
             "Sharpe CI: Mertens/Opdyke standard error; ΔSharpe vs buy-and-hold: Ledoit-Wolf studentized "
             "circular block bootstrap (p two-sided); IC t: Newey-West"
             + (f"; alpha/beta vs {summary.benchmark}" if summary.benchmark else "") + ".", "",
             markdown_table(statistics_table(summary), "strategy")]
    if summary.seeds["n"].max() > 1:
        lines += ["## Seeds", "", f"Mean ± std over {int(summary.seeds['n'].max())} seeds "
                  f"(each seed is a trial; `{summary.primary}` is their ensemble).", "",
                  markdown_table(summary.seeds[["mean", "std"]], "statistic")]
    if tearsheet_md:
        lines += ["## Tearsheet", "", f"![tearsheet]({TEARSHEET_NAME})", "", tearsheet_md]
    return lines


def _verdict_head(summary: ResearchSummary | None) -> list[str]:
    """The verdict as the report's first line."""
    return [f"**{summary.verdict}**", ""] if summary is not None else []


def _tearsheet(daily: pd.DataFrame, positions: pd.DataFrame, primary: str, benchmark, title: str):
    """``(png bytes, markdown)`` of the primary strategy's tearsheet."""
    from plusultra_core.evaluation.tearsheet import tearsheet_markdown, tearsheet_png, tearsheet_tables

    bench = benchmark.reindex(daily.index) if benchmark is not None else None
    png = tearsheet_png(daily, positions, primary, bench, title=title)
    return png, tearsheet_markdown(tearsheet_tables(daily, positions, primary, bench))


def research_text(board: Leaderboard, summary: ResearchSummary, trials=None) -> str:
    """Plain-text tables for a terminal: statistics, seed spread, cost sensitivity, coverage."""
    def block(title: str, frame: pd.DataFrame) -> str:
        counts = {c: (lambda v: f"{v:.0f}") for c in ("days", "n") if c in frame.columns}  # not 2.52e+03
        return f"{title}\n{frame.to_string(float_format=lambda v: f'{v:.3g}', formatters=counts)}\n"

    parts = [block("statistics (out of sample, net of costs)", statistics_table(summary))]
    if summary.seeds["n"].max() > 1:
        parts.append(block("seed spread", summary.seeds))
    sensitivity = _sensitivity_table(board)
    if not sensitivity.empty:
        parts.append(block("cost sensitivity (Sharpe)", sensitivity))
    if board.coverage is not None:
        parts.append(block("coverage", _coverage_table(board).loc[["total"]]))
    if trials is not None:
        parts.append(f"DSR trials: {trials.n_trials} ({trials.n_recorded} configurations evaluated in this "
                     f"store + {trials.declared} declared), trial Sharpe variance "
                     f"{trials.sharpe_variance if trials.sharpe_variance is not None else 'n/a'}\n")
    return "\n".join(parts)


def _fold_metrics_table(result: FoldResult) -> pd.DataFrame:
    # metrics as rows, strategies as columns: a few strategies side by side reads best
    return result.metrics.T.rename(index=SHORT_NAMES)


def fold_markdown(result: FoldResult, title: str, image: str = PNG_NAME, *,
                  summary: ResearchSummary | None = None, tearsheet_md: str = "") -> str:
    """The fold report's Markdown; ``image`` is the link target of the equity/drawdown PNG."""
    start, end = result.period
    days = result.daily.index
    span = f"{days[0].date()} .. {days[-1].date()}" if len(days) else "none"
    lines = [
        *_verdict_head(summary),
        f"# {title}", "",
        f"- Decision period: [{start.date()}, {end.date()}) -- returns realised {span} ({len(days)} days)",
        f"- Costs: {result.cost_bps:g} bps per unit of |position change|",
        f"- Universe: {result.info.get('n_symbols', '?')} symbols, "
        f"{result.info.get('n_evaluated', '?')} evaluated symbol-days",
        f"- Booking: {result.info.get('booking', 'standalone (entry from flat at the fold start)')}",
        _coverage_line(result.info.get("coverage")),
        "- Strategies:", *("  " + line for line in _strategy_lines(result)), "",
        *_research_sections(summary, tearsheet_md),
        "## Metrics", "", markdown_table(_fold_metrics_table(result), "metric"),
        "## Equity and drawdown", "", f"![equity and drawdown]({image})", "",
        "## Conventions", "", CONVENTIONS, "",
    ]
    return "\n".join(lines)


def _sensitivity_table(board: Leaderboard) -> pd.DataFrame:
    """strategy x cost: Sharpe of the chained book re-priced at each cost (board order)."""
    if board.cost_sensitivity is None or board.cost_sensitivity.empty:
        return pd.DataFrame()
    sharpe = board.cost_sensitivity["sharpe_ratio"].unstack("cost_bps").reindex(board.table.index)
    return sharpe.rename(columns=lambda c: f"Sharpe @ {c:g} bps")


def _coverage_table(board: Leaderboard) -> pd.DataFrame:
    if board.coverage is None:
        return pd.DataFrame()
    counts = [c for c in board.coverage.columns if c not in ("start", "end") and not c.endswith("examples")]
    return board.coverage[counts].astype(int).astype(str)  # counts as integers, not 4 digits


def _dsr_line(board: Leaderboard) -> str:
    variance = ("each strategy's own Sharpe estimation variance" if board.trial_variance is None
                else f"variance of the trials' daily Sharpe ratios {board.trial_variance:.3g}")
    source = f" from {board.trial_variance_source}" if board.trial_variance_source and \
        board.trial_variance is not None else ""
    return f"- DSR: deflated against the best of {board.n_trials} trials, {variance}{source}"


def leaderboard_markdown(board: Leaderboard, title: str = "Out-of-sample leaderboard",
                         image: str = PNG_NAME, *, summary: ResearchSummary | None = None,
                         trials=None, tearsheet_md: str = "") -> str:
    """The leaderboard report's Markdown; ``image`` is the link target of the PNG."""
    start, end = board.period
    table = board.table[[c for c in TEXT_COLUMNS if c in board.table.columns]].rename(columns=SHORT_NAMES)
    folds = board.folds.assign(start=board.folds["start"].dt.date.astype(str),
                               end=board.folds["end"].dt.date.astype(str))
    total = board.coverage.loc["total"] if board.coverage is not None else None
    trial_line = ([f"- Trials: {trials.n_recorded} configurations evaluated in this store (architecture x "
                   f"config hash x seed, ensembles included) + {trials.declared} declared"] if trials else [])
    lines = [
        *_verdict_head(summary),
        f"# {title}", "",
        f"- Period: [{start.date()}, {end.date()}), {len(board.folds)} walk-forward folds, "
        f"{len(board.daily)} out-of-sample days",
        f"- Costs: {board.cost_bps:g} bps per unit of |position change|",
        "- Booking: one continuous book across the folds (flat only before the first fold)",
        _coverage_line(total),
        f"- Strategies: {', '.join(f'`{s}`' for s in board.daily.columns)}",
        _dsr_line(board), *trial_line, "",
        *_research_sections(summary, tearsheet_md),
        "## Ranking (by Sharpe)", "", markdown_table(table, "strategy"),
        "## Equity and drawdown", "", f"![equity and drawdown]({image})", "",
        "## Cost sensitivity", "", markdown_table(_sensitivity_table(board), "strategy"),
        "## Folds", "", markdown_table(folds.set_index("start"), "start"),
        "## Coverage", "", markdown_table(_coverage_table(board), "fold"),
        "## Conventions", "", LEADERBOARD_CONVENTIONS, "",
    ]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}")


def _html(title: str, facts: list[str], tables: list[tuple[str, str]], png: bytes,
          conventions: str = CONVENTIONS) -> str:
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    body = "".join(f"<h2>{html.escape(h)}</h2>{t}" for h, t in tables)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><ul>{items}</ul>"
            f"{body}<h2>Equity and drawdown</h2><img alt='equity and drawdown' src='{png_data_uri(png)}'>"
            f"<h2>Conventions</h2><p>{html.escape(conventions)}</p></body></html>\n")


def _facts(markdown: str) -> list[str]:
    """The top bullet list of a report's Markdown, as plain strings for the HTML page."""
    return [line.strip()[2:].replace("`", "") for line in markdown.split("## ")[0].splitlines()
            if line.strip().startswith("- ")]


def _research_html(summary: ResearchSummary | None) -> list[tuple[str, str]]:
    if summary is None:
        return []
    tables = [("Verdict", f"<p><b>{html.escape(summary.verdict)}</b></p>"),
              ("Statistics", html_table(statistics_table(summary), "strategy"))]
    if summary.seeds["n"].max() > 1:
        tables.append(("Seeds", html_table(summary.seeds[["mean", "std"]], "statistic")))
    return tables


def _tearsheet_files(directory: Path, png: bytes | None) -> dict:
    return {directory / TEARSHEET_NAME: png} if png is not None else {}


def write_fold_report(result: FoldResult, directory, title: str, *, summary: ResearchSummary | None = None,
                      benchmark: pd.Series | None = None) -> ReportFiles:
    """Write ``report.md``, ``report.html``, ``equity.png``, ``data/`` (the fold's files) and, with a
    ``summary``, the verdict, statistics and ``tearsheet.png``."""
    directory = Path(directory)
    png = equity_drawdown_png(result.daily, title)
    sheet, sheet_md = (_tearsheet(result.daily, result.positions, result.model_name, benchmark, title)
                       if summary is not None else (None, ""))
    markdown = fold_markdown(result, title, summary=summary, tearsheet_md=sheet_md)
    page = _html(title, _facts(markdown), [*_research_html(summary),
                                          ("Metrics", html_table(_fold_metrics_table(result), "metric"))], png)
    paths = ReportFiles(markdown=directory / "report.md", html=directory / "report.html",
                        png=directory / PNG_NAME, paths=())
    written = atomic.write_files({
        paths.png: png, paths.markdown: markdown, **_tearsheet_files(directory, sheet),
        paths.html: page, **result.file_writers(directory / "data")})
    return ReportFiles(paths.markdown, paths.html, paths.png, tuple(written))


def write_leaderboard_report(board: Leaderboard, directory, title: str = "Out-of-sample leaderboard", *,
                             summary: ResearchSummary | None = None, trials=None,
                             benchmark: pd.Series | None = None) -> ReportFiles:
    """Write ``leaderboard.md``, ``leaderboard.html``, ``equity.png``, ``leaderboard.csv``,
    ``daily.csv``, ``coverage.csv`` and ``cost_sensitivity.csv``; with a ``summary`` also the
    verdict, statistics (``statistics.csv``) and ``tearsheet.png``."""
    directory = Path(directory)
    png = equity_drawdown_png(board.daily, title)
    sheet, sheet_md = (_tearsheet(board.daily, board.positions, board.model_name, benchmark, title)
                       if summary is not None else (None, ""))
    markdown = leaderboard_markdown(board, title, summary=summary, trials=trials, tearsheet_md=sheet_md)
    ranking = board.table[[c for c in TEXT_COLUMNS if c in board.table.columns]].rename(columns=SHORT_NAMES)
    folds = board.folds.assign(start=board.folds["start"].dt.date.astype(str),
                               end=board.folds["end"].dt.date.astype(str)).set_index("start")
    page = _html(title, _facts(markdown), [*_research_html(summary),
                                          ("Ranking (by Sharpe)", html_table(ranking, "strategy")),
                                          ("Cost sensitivity", html_table(_sensitivity_table(board), "strategy")),
                                          ("Folds", html_table(folds, "start")),
                                          ("Coverage", html_table(_coverage_table(board), "fold"))],
                 png, LEADERBOARD_CONVENTIONS)
    paths = ReportFiles(markdown=directory / "leaderboard.md", html=directory / "leaderboard.html",
                        png=directory / PNG_NAME, paths=())
    written = atomic.write_files({
        paths.png: png, paths.markdown: markdown, paths.html: page,
        **_tearsheet_files(directory, sheet),
        **({directory / "statistics.csv": summary.table.to_csv()} if summary is not None else {}),
        directory / "leaderboard.csv": board.table.to_csv(),
        directory / "daily.csv": board.daily.to_csv(),
        **({directory / "coverage.csv": board.coverage.to_csv()} if board.coverage is not None else {}),
        **({directory / "cost_sensitivity.csv": board.cost_sensitivity.to_csv()}
           if board.cost_sensitivity is not None else {})})
    return ReportFiles(paths.markdown, paths.html, paths.png, tuple(written))
