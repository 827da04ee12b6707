"""Equity curve and drawdown (underwater) plot of daily strategy returns, as PNG bytes.

Uses matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no display, no
pyplot global state, safe inside Dagster runs and threads. Returning bytes lets the caller write
the file atomically or embed it as a data URI.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

__all__ = ["wealth_and_drawdown", "equity_drawdown_png"]


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


def equity_drawdown_png(daily: pd.DataFrame, title: str, *, dpi: int = 110,
                        size: tuple[float, float] = (9.0, 6.0)) -> bytes:
    """One PNG: equity curves (top, compounded wealth) and drawdowns (bottom) of every column."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wealth, drawdown = wealth_and_drawdown(daily)
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    for i, name in enumerate(daily.columns):
        # the model (first column) is drawn thicker so it stands out from the baselines
        width = 2.0 if i == 0 else 1.2
        top.plot(wealth.index, wealth[name], label=str(name), linewidth=width)
        bottom.plot(drawdown.index, drawdown[name] * 100.0, linewidth=width)
    top.axhline(1.0, color="grey", linewidth=0.6, linestyle=":")
    top.set_ylabel("wealth (start = 1)")
    top.set_title(title)
    top.legend(loc="best", fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
