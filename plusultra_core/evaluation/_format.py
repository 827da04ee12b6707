"""Number formatting and Markdown/HTML tables shared by the terminal table and the reports."""

from __future__ import annotations

import html
import math

import pandas as pd

COUNT_COLUMNS = ("n_periods", "n_folds", "n_days")

# Short headers keep tables narrow enough for a laptop screen.
SHORT_NAMES = {"sharpe_ratio": "Sharpe", "annual_return": "CAGR", "annual_volatility": "vol",
               "max_drawdown": "max DD", "calmar_ratio": "Calmar", "sortino_ratio": "Sortino",
               "turnover": "turnover", "hit_rate": "hit", "information_coefficient": "IC",
               "rank_information_coefficient": "rank IC", "probabilistic_sharpe_ratio": "PSR",
               "deflated_sharpe_ratio": "DSR", "n_periods": "days", "total_return": "total",
               "downside_risk": "downside", "n_folds": "folds"}


def format_value(value, column: str = "", *, count: bool = False) -> str:
    """Four significant digits; counts as integers; NaN/None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    value = float(value)
    if math.isnan(value):
        return "-"
    if (count or column in COUNT_COLUMNS) and math.isfinite(value):
        return f"{int(value)}"
    if value == 0 or not math.isfinite(value) or abs(value) >= 1e-4:
        return f"{value:.4g}"
    return f"{value:.2e}"


def _cells(table: pd.DataFrame, index_label: str) -> tuple[list[str], list[list[str]]]:
    header = [index_label, *map(str, table.columns)]
    rows = []
    for idx in table.index:
        row = [str(idx)]
        for col in table.columns:
            # metrics are columns in the leaderboard and rows in a fold report: check both
            count = col in COUNT_COLUMNS or idx in COUNT_COLUMNS
            row.append(format_value(table.at[idx, col], count=count))
        rows.append(row)
    return header, rows


def markdown_table(table: pd.DataFrame, index_label: str = "") -> str:
    """A GitHub-flavoured Markdown table of ``table`` (index as the first column)."""
    header, rows = _cells(table, index_label)
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |",
             "|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


def html_table(table: pd.DataFrame, index_label: str = "") -> str:
    """An HTML ``<table>`` of ``table`` with escaped cells."""
    header, rows = _cells(table, index_label)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
