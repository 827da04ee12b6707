"""Equity curve and drawdown (underwater) plot of daily strategy returns, and the line styles
every evaluation figure shares.

Uses matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no display, no
pyplot global state, safe inside Dagster runs and threads. Returning bytes lets the caller write
the file atomically or embed it as a data URI.

Identical series stay distinguishable: an ensemble equal to one of its seeds, or
``buy_and_hold`` equal to ``buy_and_hold@exposure`` at exposure 1, would otherwise draw one line
over the other and one strategy would vanish from the picture. So every strategy gets its own
(colour, line style, marker) triple (`strategy_styles`), markers are staggered along the curve,
and the legend says which curves coincide (`overlap_labels`: ``(= x)`` identical returns,
``(~ x)`` curves within a few pixels of each other).
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["wealth_and_drawdown", "equity_drawdown_figure", "equity_drawdown_png",
           "strategy_styles", "overlap_labels", "figure_png", "BENCHMARK_STYLE"]

# matplotlib's tab10 colours, spelled out so this module imports without matplotlib.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# 6 line styles against 10 colours/markers: the (colour, style, marker) triple repeats only
# after lcm(10, 6) = 30 strategies.
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
_MARKERS_PER_LINE = 10
# The benchmark is not a strategy: black and thin, outside the strategies' colour cycle.
BENCHMARK_STYLE = {"color": "black", "linestyle": (0, (2, 2)), "marker": None, "linewidth": 1.0}


def wealth_and_drawdown(daily: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compounded wealth (starting capital 1.0) and drawdown from its running peak, per column.

    A NaN return is a flat day (as `metrics.max_drawdown`); the starting capital counts as a peak,
    so ``drawdown.min()`` equals `metrics.max_drawdown` of each column.
    """
    r = np.nan_to_num(daily.to_numpy(dtype=np.float64), nan=0.0)    # [T, S]
    wealth = np.cumprod(1.0 + r, axis=0)                              # [T, S]
    peak = np.maximum(np.maximum.accumulate(wealth, axis=0), 1.0)     # starting capital is a peak
    return (pd.DataFrame(wealth, index=daily.index, columns=daily.columns),
            pd.DataFrame(wealth / peak - 1.0, index=daily.index, columns=daily.columns))


def strategy_styles(names: Sequence[str], n_points: int, emphasis: str | None = None) -> dict[str, dict]:
    """``name -> Line2D keyword arguments``: a distinct (colour, line style, marker) per name.

    Markers sit every ``n_points / 10`` points, each name's shifted by a fraction of that step,
    so two coinciding curves show both markers. ``emphasis`` (the model) is drawn thicker.
    """
    names = list(names)
    step = max(1, n_points // _MARKERS_PER_LINE)
    styles = {}
    for i, name in enumerate(names):
        styles[name] = {
            "color": _COLORS[i % len(_COLORS)],
            "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
            "marker": _MARKERS[i % len(_MARKERS)],
            "markevery": ((i * step) // max(len(names), 1) % step, step),
            "markersize": 4.0,
            "linewidth": 2.0 if name == emphasis else 1.2,
        }
    return styles


def overlap_labels(daily: pd.DataFrame, *, atol: float = 1e-12, visual_tol: float = 0.005) -> dict[str, str]:
    """``column -> legend label``: the name, noting the first earlier column it overlaps.

    ``"b (= a)"`` when b's returns equal a's within ``atol`` on every day (NaN = flat day);
    ``"b (~ a)"`` when their wealth curves stay within ``visual_tol`` of the plotted wealth range
    (a few pixels: the lines would hide each other).
    """
    names = [str(c) for c in daily.columns]
    labels = dict(zip(names, names))
    if len(names) < 2 or len(daily) == 0:
        return labels
    r = np.nan_to_num(daily.to_numpy(dtype=np.float64), nan=0.0)           # [T, S]
    wealth = np.cumprod(1.0 + r, axis=0)                                     # [T, S]
    span = max(float(np.ptp(np.concatenate([wealth.ravel(), [1.0]]))), 1e-12)
    # [S, S] largest daily-return gap and largest wealth gap of every pair (S is ~10: cheap)
    return_gap = np.abs(r[:, :, None] - r[:, None, :]).max(axis=0)
    wealth_gap = np.abs(wealth[:, :, None] - wealth[:, None, :]).max(axis=0)
    for j in range(1, len(names)):
        for i in range(j):
            if return_gap[i, j] <= atol:
                labels[names[j]] = f"{names[j]} (= {names[i]})"
                break
            if wealth_gap[i, j] <= visual_tol * span:
                labels[names[j]] = f"{names[j]} (~ {names[i]})"
                break
    return labels


def figure_png(fig) -> bytes:
    """PNG bytes of a Figure drawn on an Agg canvas (its size is ``figsize * dpi`` pixels)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def equity_drawdown_figure(daily: pd.DataFrame, title: str, *, dpi: int = 110,
                           size: tuple[float, float] = (9.0, 6.0)):
    """The Figure of `equity_drawdown_png` (equity top, drawdown bottom; model = first column)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wealth, drawdown = wealth_and_drawdown(daily)
    names = list(daily.columns)
    styles = strategy_styles(names, len(daily), emphasis=names[0] if names else None)
    labels = overlap_labels(daily)
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    for name in names:
        top.plot(wealth.index, wealth[name], label=labels[str(name)], **styles[name])
        bottom.plot(drawdown.index, drawdown[name] * 100.0, **styles[name])
    top.axhline(1.0, color="grey", linewidth=0.6, linestyle=":")
    top.set_ylabel("wealth (start = 1)")
    top.set_title(title)
    if names:
        top.legend(loc="best", fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def equity_drawdown_png(daily: pd.DataFrame, title: str, *, dpi: int = 110,
                        size: tuple[float, float] = (9.0, 6.0)) -> bytes:
    """One PNG: equity curves (top, compounded wealth) and drawdowns (bottom) of every column."""
    return figure_png(equity_drawdown_figure(daily, title, dpi=dpi, size=size))
