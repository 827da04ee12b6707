"""A quant tearsheet of one strategy's out-of-sample record: tables and a multi-panel PNG.

Inputs are what a fold or the leaderboard already holds: ``daily`` (date x strategy net returns,
model columns first), the long ``positions`` book (`scoring.POSITION_COLUMNS`), an optional
``benchmark`` Series of daily simple returns on the same realisation dates, and ``primary``, the
strategy the sheet is about. Conventions are the evaluation package's: a NaN return is a flat day,
wealth compounds from a starting capital of 1.0 that counts as a peak (so the worst drawdown is
`metrics.max_drawdown`), and the portfolio's return on a day is the *mean* ``pnl`` over that
day's active symbols, so a symbol's contribution to the portfolio is ``pnl / n_active`` that day
and the contributions of all symbols add up to the sum of the daily returns.

Library decision (Dec 2026, Python 3.11, pandas 3.0.6, numpy 2.4.6, matplotlib 3.11.2). The
sheet is hand-written with pandas + matplotlib because none of the candidates fit cleanly:

- ``quantstats 0.0.86``: installs yfinance 1.7, curl_cffi, lxml, beautifulsoup4, peewee and
  seaborn and imports all of them *and* ``matplotlib.pyplot`` on ``import quantstats`` (+0.3 s
  on top of our imports, 1.6 s cold); its plots go through pyplot's global figure manager and
  log ``findfont: Font family 'Arial' not found`` on every plot. Wrong numbers for us:
  ``stats.drawdown_details`` returns an *empty* table for a record whose only drawdown is a
  first-day loss (the fold's entry cost makes that the common case) while its own
  ``max_drawdown`` says -2% (record ``[-0.02, 0.01, 0.005, -0.001, 0.002, 0.003]``);
  ``stats.monthly_returns`` reports 0.0 for months with no data and
  raises ``ValueError: cannot set a frame with no defined index and a scalar`` on 0 days.
- ``pyfolio-reloaded 0.10.1`` (+ ``empyrical-reloaded 0.7.1``): installs IPython, scikit-learn,
  seaborn and bottleneck, warns ``Module "zipline.assets" not found`` on import and imports
  pyplot; ``create_returns_tear_sheet`` leaves a pyplot figure open and prints IPython display
  objects. Its per-panel functions do accept ``ax=`` and drew on an Agg Figure in a thread, but
  ``timeseries.gen_drawdown_table`` ignores the starting capital as a peak (worst drawdown 0.1%
  where ``max_drawdown`` is 2% on the same record).
- ``empyrical-reloaded`` alone imports without pyplot, but still requires peewee (an ORM) and
  bottleneck; `plusultra_core.metrics` already implements its definitions, and what remained
  (monthly compounding, rolling mean/std) is one pandas call each.

Each was tried in a throwaway venv layered on the project's, with sockets disabled: everything
above ran offline; the failures are behaviour, not missing network.

Performance: everything is a pandas groupby or a numpy reduction; no Python loop runs per row,
per day or per symbol (only per panel, per strategy line and per heatmap month cell). With 10
strategies x 2,500 days x 500 symbols (12.5M book rows) on the 2-core machine the tables take
~1-2 s and the whole PNG ~3-5 s, most of it matplotlib's layout and rasterising.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError
from plusultra_core.evaluation._format import markdown_table
from plusultra_core.evaluation.plots import (BENCHMARK_STYLE, figure_png, overlap_labels,
                                             strategy_styles, wealth_and_drawdown)
from plusultra_core.evaluation.scoring import daily_turnover

__all__ = ["TABLES", "tearsheet_tables", "tearsheet_markdown", "tearsheet_figure", "tearsheet_png",
           "monthly_returns", "worst_drawdowns", "symbol_attribution", "exposure",
           "return_distribution", "comparison_series"]

TABLES = ("monthly_returns", "worst_drawdowns", "symbol_attribution", "exposure",
          "return_distribution")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PERIODS_PER_YEAR = 252
_BAR_SYMBOLS = 10  # attribution bars: the best and the worst 10 symbols when there are more


def _check(daily: pd.DataFrame, primary: str) -> None:
    if primary not in daily.columns:
        raise ConfigError(f"tearsheet: primary strategy {primary!r} is not a column of daily "
                          f"({list(daily.columns)})")


def _benchmark_frame(daily: pd.DataFrame, benchmark: pd.Series | None) -> pd.DataFrame:
    """The benchmark as a one-column frame on ``daily``'s dates (missing dates are NaN: flat)."""
    if benchmark is None:
        return pd.DataFrame(index=daily.index)
    name = str(benchmark.name) if benchmark.name is not None else "benchmark"
    if name in daily.columns:
        name = f"{name} (benchmark)"
    return pd.DataFrame({name: benchmark.astype(np.float64).reindex(daily.index)})


def comparison_series(daily: pd.DataFrame, primary: str,
                      benchmark: pd.Series | None = None) -> pd.Series | None:
    """What the primary is compared with: the benchmark, else ``buy_and_hold``, else None."""
    bench = _benchmark_frame(daily, benchmark)
    if len(bench.columns):
        return bench.iloc[:, 0]
    if "buy_and_hold" in daily.columns and primary != "buy_and_hold":
        return daily["buy_and_hold"]
    return None


def _primary_book(positions: pd.DataFrame, primary: str, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The primary's rows of the long book on ``dates`` (the days ``daily`` covers)."""
    book = positions[positions["strategy"] == primary]
    return book[book["date"].isin(dates)]


def monthly_returns(daily: pd.DataFrame, primary: str) -> pd.DataFrame:
    """year x month compounded returns of ``primary``, plus ``total`` (the year's compounded return).

    A month without any day in the record is NaN (not 0: no data is not a flat month). The
    product of ``1 + total`` over the years is ``1 +`` the record's total return.
    """
    _check(daily, primary)
    r = daily[primary].astype(np.float64).fillna(0.0)
    columns = [*MONTHS, "total"]
    if r.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="year", dtype=np.int64),
                            dtype=np.float64)
    dates = pd.DatetimeIndex(r.index)
    growth = (1.0 + r).groupby([dates.year.rename("year"), dates.month.rename("month")]).prod()
    table = (growth - 1.0).unstack("month").reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    table["total"] = growth.groupby(level="year").prod() - 1.0
    table.columns.name = None
    return table


def worst_drawdowns(daily: pd.DataFrame, primary: str, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdown episodes of ``primary``, deepest first.

    Columns: ``peak`` (last date at the peak; NaT when the peak is the starting capital, before
    the first day), ``trough``, ``recovery`` (first date back at the peak; NaT if still under
    water), ``depth`` (negative fraction; the first row's equals `metrics.max_drawdown`) and
    ``n_days`` (days spent under water, recovery day excluded).
    """
    _check(daily, primary)
    columns = ["peak", "trough", "recovery", "depth", "n_days"]
    _, drawdown = wealth_and_drawdown(daily[[primary]])
    dd = drawdown[primary].to_numpy()
    under = dd < 0
    if not under.any():
        empty = pd.DataFrame({c: pd.Series(dtype="datetime64[ns]") for c in columns[:3]})
        return empty.assign(depth=pd.Series(dtype=np.float64), n_days=pd.Series(dtype=np.int64)) \
            .rename_axis("rank")
    # An episode is a run of consecutive days under water; number the runs.
    episode = np.cumsum(under & ~np.r_[False, under[:-1]])
    days = pd.DataFrame({"episode": episode[under], "pos": np.flatnonzero(under), "dd": dd[under]})
    groups = days.groupby("episode")
    first, last = groups["pos"].min().to_numpy(), groups["pos"].max().to_numpy()
    trough = days.loc[groups["dd"].idxmin().to_numpy(), "pos"].to_numpy()
    dates = pd.DatetimeIndex(daily.index)
    n = len(dates)

    def date_at(pos: np.ndarray) -> pd.DatetimeIndex:
        ok = (pos >= 0) & (pos < n)
        return pd.DatetimeIndex(np.where(ok, dates.to_numpy()[np.clip(pos, 0, n - 1)], np.datetime64("NaT")))

    table = pd.DataFrame({"peak": date_at(first - 1), "trough": date_at(trough),
                          "recovery": date_at(last + 1), "depth": groups["dd"].min().to_numpy(),
                          "n_days": last - first + 1})
    table = table.sort_values("depth", kind="stable").head(top).reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return table


def symbol_attribution(daily: pd.DataFrame, positions: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Per symbol of ``primary``: its contribution to the portfolio return, sorted best first.

    The portfolio's return on day d is ``mean over active symbols of pnl``, so symbol s
    contributes ``pnl[s, d] / n_active[d]``; ``net`` sums that over days (``sum(net)`` over symbols
    = ``sum`` over days of the daily returns), ``cost`` the same share of costs and ``gross = net +
    cost``. ``mean_position`` and ``n_days`` are over the symbol's active days; ``hit_rate`` is
    `metrics.hit_rate` of sign(position) vs the realised return (flat or zero-return days are no call).
    """
    _check(daily, primary)
    book = _primary_book(positions, primary, pd.DatetimeIndex(daily.index))
    columns = ["net", "gross", "cost", "mean_position", "n_days", "hit_rate"]
    if book.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="symbol"), dtype=np.float64)
    pnl = book["pnl"].to_numpy(dtype=np.float64)
    # the day's denominator counts the rows the portfolio mean counted (non-NaN pnl)
    weight = 1.0 / book.groupby("date")["pnl"].transform("count").to_numpy(dtype=np.float64)
    counted = ~np.isnan(pnl)
    position = book["position"].to_numpy(dtype=np.float64)
    realised = book["realised_return"].to_numpy(dtype=np.float64)
    call = (position != 0) & (realised != 0) & np.isfinite(position) & np.isfinite(realised)
    parts = pd.DataFrame({
        "symbol": book["symbol"].to_numpy(),
        "net": np.where(counted, pnl * weight, 0.0),
        "cost": np.where(counted, book["cost"].to_numpy(dtype=np.float64) * weight, 0.0),
        "position": position,
        "hit": call & (np.sign(position) == np.sign(realised)),
        "call": call,
    })
    g = parts.groupby("symbol", sort=True)
    table = pd.DataFrame({"net": g["net"].sum(), "cost": g["cost"].sum(),
                          "mean_position": g["position"].mean(), "n_days": g.size()})
    table.insert(1, "gross", table["net"] + table["cost"])
    calls = g["call"].sum()
    table["hit_rate"] = (g["hit"].sum() / calls.where(calls > 0)).astype(np.float64)
    return table.sort_values("net", ascending=False, kind="stable")


def exposure(daily: pd.DataFrame, positions: pd.DataFrame, primary: str) -> pd.DataFrame:
    """Per date of ``daily``: the primary's mean ``net`` and ``gross`` (|position|) exposure over
    active symbols, its ``turnover`` (`scoring.daily_turnover`) and ``n_active``; 0 on cash days."""
    _check(daily, primary)
    dates = pd.DatetimeIndex(daily.index, name="date")
    book = _primary_book(positions, primary, dates)
    position = book["position"].astype(np.float64)
    per_day = pd.DataFrame({"net": position, "gross": position.abs(), "date": book["date"]}) \
        .groupby("date").agg(net=("net", "mean"), gross=("gross", "mean"), n_active=("net", "size"))
    table = per_day.reindex(dates).fillna(0.0)
    # an empty record has no turnover to compute (and scoring's per-date means need a date)
    turnover = daily_turnover(book, dates, [primary])[primary].to_numpy() if len(dates) else np.zeros(0)
    table.insert(2, "turnover", turnover)
    table["n_active"] = table["n_active"].astype(np.int64)
    return table


def return_distribution(daily: pd.DataFrame, benchmark: pd.Series | None = None) -> pd.DataFrame:
    """statistic x series summary of daily returns (every strategy, then the benchmark).

    ``kurtosis`` is the excess kurtosis (0 for a Gaussian) and ``skew`` the adjusted sample skew,
    as pandas computes them; NaN days are skipped.
    """
    frame = pd.concat([daily, _benchmark_frame(daily, benchmark)], axis=1).astype(np.float64)
    rows = {"n_days": frame.count(), "mean": frame.mean(), "std": frame.std(), "skew": frame.skew(),
            "kurtosis": frame.kurt(), "q05": frame.quantile(0.05), "q95": frame.quantile(0.95),
            "best": frame.max(), "worst": frame.min()}
    table = pd.DataFrame(rows).T
    table.index.name = "statistic"
    table.columns = [str(c) for c in table.columns]
    return table


def tearsheet_tables(daily: pd.DataFrame, positions: pd.DataFrame, primary: str,
                     benchmark: pd.Series | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the tearsheet (`TABLES`), keyed by name; see each function for its columns."""
    _check(daily, primary)
    return {"monthly_returns": monthly_returns(daily, primary),
            "worst_drawdowns": worst_drawdowns(daily, primary),
            "symbol_attribution": symbol_attribution(daily, positions, primary),
            "exposure": exposure(daily, positions, primary),
            "return_distribution": return_distribution(daily, benchmark)}


def _dates_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Date columns as ``YYYY-MM-DD`` strings (`markdown_table` formats numbers only)."""
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            text = out[col].dt.strftime("%Y-%m-%d").astype(object)
            out[col] = text.where(out[col].notna(), "start" if col == "peak" else "-")
    return out


def tearsheet_markdown(tables: dict[str, pd.DataFrame], max_symbols: int = 2 * _BAR_SYMBOLS) -> str:
    """Markdown sections of `tearsheet_tables` output (exposure, a daily series, is left to the plot).

    The attribution shows the best and worst ``max_symbols / 2`` symbols when there are more.
    """
    attribution = tables["symbol_attribution"]
    note = ""
    if len(attribution) > max_symbols:
        half = max_symbols // 2
        attribution = pd.concat([attribution.head(half), attribution.tail(half)])
        note = f"Best and worst {half} of {len(tables['symbol_attribution'])} symbols.\n\n"
    sections = [("Monthly returns", tables["monthly_returns"], "year"),
                ("Worst drawdowns", _dates_as_text(tables["worst_drawdowns"]), "rank"),
                ("Return distribution (daily)", tables["return_distribution"], "statistic")]
    lines = []
    for heading, table, label in sections:
        lines += [f"## {heading}", "", markdown_table(table, label)]
    lines += ["## Symbol attribution (share of the portfolio return)", "",
              note + markdown_table(attribution, "symbol")]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The figure: one function per panel, each drawing on the Axes it is given.

def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def _lines(ax, frame: pd.DataFrame, styles: dict, labels: dict | None = None, scale: float = 1.0) -> None:
    for name in frame.columns:
        ax.plot(frame.index, frame[name].to_numpy() * scale,
                label=None if labels is None else labels[str(name)], **styles[name])


def _rolling(ax_sharpe, ax_vol, pair: pd.DataFrame, styles: dict, window: int) -> None:
    """Rolling annualised Sharpe and volatility (``window`` days) of the primary and its comparison."""
    ax_sharpe.set_title(f"rolling Sharpe ({window} days, annualised)", fontsize="medium")
    ax_vol.set_title(f"rolling volatility ({window} days, annualised, %)", fontsize="medium")
    if len(pair) < window:
        for ax in (ax_sharpe, ax_vol):
            _no_data(ax, f"the record ({len(pair)} days) is shorter than the {window}-day window")
        return
    roll = pair.fillna(0.0).rolling(window, min_periods=window)
    mean, std = roll.mean(), roll.std()
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = (mean / std.where(std > 0)) * math.sqrt(PERIODS_PER_YEAR)
    _lines(ax_sharpe, sharpe, styles, {str(c): str(c) for c in pair.columns})
    _lines(ax_vol, std * math.sqrt(PERIODS_PER_YEAR), styles, scale=100.0)
    ax_sharpe.axhline(0.0, color="grey", linewidth=0.6)
    ax_sharpe.legend(loc="best", fontsize="x-small")


def _heatmap(ax, table: pd.DataFrame, primary: str) -> None:
    ax.set_title(f"monthly returns of {primary} (%)", fontsize="medium")
    values = table[list(MONTHS)].to_numpy(dtype=np.float64) * 100.0     # [years, 12]
    if values.size == 0:
        _no_data(ax, "no data")
        return
    limit = max(float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0, 1e-9)
    ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(12), MONTHS, fontsize="x-small")
    ax.set_yticks(range(len(table)), [str(y) for y in table.index], fontsize="x-small")
    if values.size <= 12 * 30:  # cell labels stay legible up to ~30 years
        rows, cols = np.nonzero(np.isfinite(values))
        for row, col in zip(rows, cols):  # one text per month cell, not per row of data
            ax.text(col, row, f"{values[row, col]:.1f}", ha="center", va="center", fontsize=6)


def _distribution(ax, primary: pd.Series, other: pd.Series | None, styles: dict) -> None:
    ax.set_title("daily return distribution (%)", fontsize="medium")
    series = [s.dropna() * 100.0 for s in (primary, other) if s is not None]
    if not len(series[0]):
        _no_data(ax, "no data")
        return
    both = np.concatenate([s.to_numpy() for s in series])
    bins = np.histogram_bin_edges(both, bins=min(50, max(5, both.size // 5)))
    for s in series:
        style = styles.get(s.name, BENCHMARK_STYLE)
        ax.hist(s.to_numpy(), bins=bins, histtype="step", color=style["color"],
                linestyle=style["linestyle"], linewidth=1.4, label=str(s.name))
    ax.legend(loc="best", fontsize="x-small")


def _exposure(ax, table: pd.DataFrame) -> None:
    ax.set_title("exposure (mean over active symbols) and turnover", fontsize="medium")
    if table.empty:
        _no_data(ax, "no data")
        return
    ax.plot(table.index, table["net"], color="#1f77b4", linewidth=1.2, label="net position")
    ax.plot(table.index, table["gross"], color="#ff7f0e", linestyle="--", linewidth=1.2,
            label="gross |position|")
    ax.plot(table.index, table["turnover"], color="#7f7f7f", linewidth=0.8, alpha=0.8, label="turnover")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.legend(loc="best", fontsize="x-small")


def _attribution(ax, table: pd.DataFrame) -> None:
    shown = table
    title = "net contribution by symbol (% of portfolio)"
    if len(table) > 2 * _BAR_SYMBOLS:
        shown = pd.concat([table.head(_BAR_SYMBOLS), table.tail(_BAR_SYMBOLS)])
        title += f", best and worst {_BAR_SYMBOLS} of {len(table)}"
    ax.set_title(title, fontsize="medium")
    if shown.empty:
        _no_data(ax, "no positions")
        return
    values = shown["net"].to_numpy() * 100.0
    ax.barh(range(len(shown)), values, color=np.where(values >= 0, "#2ca02c", "#d62728"))
    ax.set_yticks(range(len(shown)), [str(s) for s in shown.index], fontsize="x-small")
    ax.invert_yaxis()  # best on top
    ax.axvline(0.0, color="grey", linewidth=0.6)


def tearsheet_figure(daily: pd.DataFrame, positions: pd.DataFrame, primary: str,
                     benchmark: pd.Series | None = None, title: str = "", rolling_window: int = 63,
                     *, dpi: int = 100, size: tuple[float, float] = (14.0, 20.0)):
    """The tearsheet as a matplotlib Figure on an Agg canvas (no pyplot state; thread-safe).

    Panels: cumulative return of every strategy (+ benchmark); drawdown; cumulative excess
    return over the benchmark (else ``buy_and_hold``) as the wealth ratio - 1; rolling Sharpe and
    volatility of the primary and that comparison; exposure and turnover; the return histogram;
    the monthly returns heatmap; per-symbol attribution bars. Short records annotate the panels
    they cannot fill instead of failing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    _check(daily, primary)
    bench = _benchmark_frame(daily, benchmark)
    curves = pd.concat([daily, bench], axis=1).astype(np.float64)    # [T, S (+1)]
    names = list(daily.columns)
    styles = strategy_styles(names, len(daily), emphasis=primary)
    styles.update({name: BENCHMARK_STYLE for name in bench.columns})
    labels = overlap_labels(curves)
    comparison = comparison_series(daily, primary, benchmark)
    wealth, drawdown = wealth_and_drawdown(curves)
    tables = tearsheet_tables(daily, positions, primary, benchmark)

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(6, 2, height_ratios=[2.2, 1.0, 1.2, 1.2, 1.2, 1.6])
    ax_cum = fig.add_subplot(grid[0, :])
    ax_dd = fig.add_subplot(grid[1, :], sharex=ax_cum)
    ax_excess = fig.add_subplot(grid[2, :], sharex=ax_cum)
    ax_sharpe, ax_vol = fig.add_subplot(grid[3, 0], sharex=ax_cum), fig.add_subplot(grid[3, 1], sharex=ax_cum)
    ax_exposure, ax_hist = fig.add_subplot(grid[4, 0], sharex=ax_cum), fig.add_subplot(grid[4, 1])
    ax_heat, ax_attr = fig.add_subplot(grid[5, 0]), fig.add_subplot(grid[5, 1])
    fig.suptitle(title or f"Tearsheet: {primary}")
    locator = AutoDateLocator()  # the date panels share this x axis, hence its ticks
    ax_cum.xaxis.set_major_locator(locator)
    ax_cum.xaxis.set_major_formatter(ConciseDateFormatter(locator))

    ax_cum.set_title("cumulative return (%)", fontsize="medium")
    _lines(ax_cum, wealth - 1.0, styles, labels, scale=100.0)
    ax_cum.axhline(0.0, color="grey", linewidth=0.6, linestyle=":")
    if len(curves.columns):
        ax_cum.legend(loc="upper left", fontsize="small", ncol=2)
    if curves.empty:
        _no_data(ax_cum, "no out-of-sample days")
    ax_dd.set_title("drawdown (%)", fontsize="medium")
    _lines(ax_dd, drawdown, styles, scale=100.0)

    if comparison is None:
        ax_excess.set_title("excess cumulative return: no benchmark or buy_and_hold", fontsize="medium")
    else:
        ax_excess.set_title(f"excess cumulative return over {comparison.name} (wealth ratio - 1, %)",
                            fontsize="medium")
        others = [c for c in curves.columns if c != comparison.name]
        ratio = wealth[others].div(wealth[comparison.name], axis=0) - 1.0
        _lines(ax_excess, ratio, styles, scale=100.0)
        ax_excess.axhline(0.0, color="grey", linewidth=0.6)

    pair = curves[[primary] + ([comparison.name] if comparison is not None else [])]
    _rolling(ax_sharpe, ax_vol, pair, styles, rolling_window)
    _exposure(ax_exposure, tables["exposure"])
    _distribution(ax_hist, curves[primary], None if comparison is None else curves[comparison.name], styles)
    _heatmap(ax_heat, tables["monthly_returns"], primary)
    _attribution(ax_attr, tables["symbol_attribution"])
    for ax in (ax_cum, ax_dd, ax_excess, ax_sharpe, ax_vol, ax_exposure, ax_hist):
        ax.grid(alpha=0.3)
    return fig


def tearsheet_png(daily: pd.DataFrame, positions: pd.DataFrame, primary: str,
                  benchmark: pd.Series | None = None, title: str = "", rolling_window: int = 63,
                  *, dpi: int = 100, size: tuple[float, float] = (14.0, 20.0)) -> bytes:
    """`tearsheet_figure` as PNG bytes of ``size * dpi`` pixels."""
    return figure_png(tearsheet_figure(daily, positions, primary, benchmark, title, rolling_window,
                                       dpi=dpi, size=size))
