"""Tearsheet: its tables agree with the metrics and the portfolio identity; its PNG renders any record."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from plusultra_core import metrics as M
from plusultra_core.errors import ConfigError
from plusultra_core.evaluation import evaluate_fold
from plusultra_core.evaluation.plots import figure_png
from plusultra_core.evaluation.scoring import POSITION_COLUMNS, daily_returns
from plusultra_core.evaluation.tearsheet import (MONTHS, TABLES, symbol_attribution, tearsheet_figure,
                                                 tearsheet_markdown, tearsheet_png, tearsheet_tables,
                                                 worst_drawdowns)
from tests.core.evaluation.synthetic import FEATURES, make_frame, perfect_foresight

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PRIMARY = "model"


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, which must come first."""
    assert png.startswith(PNG_MAGIC) and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def fold():
    """A fold spanning a year boundary, with a noisy model (so it has drawdowns) and four symbols."""
    frame = make_frame(n_symbols=4, n_days=300, seed=3)
    flip = np.random.default_rng(0).choice([1.0, -1.0], len(frame), p=[0.6, 0.4])
    preds = perfect_foresight(frame).assign(position=lambda p: 0.4 * p["position"] * flip)
    return evaluate_fold(preds, frame, "2020-02-01", "2021-02-01", cost_bps=5.0,
                         feature_names=FEATURES, train_end="2020-02-01", purge=1)


@pytest.fixture(scope="module")
def tables(fold):
    return tearsheet_tables(fold.daily, fold.positions, PRIMARY)


def _book(rows: list[tuple[str, str, float, float, float]], strategy: str = PRIMARY) -> pd.DataFrame:
    """A long book from (date, symbol, position, realised_return, cost) rows; pnl = p * r - cost."""
    date, symbol, position, realised, cost = map(list, zip(*rows))
    date = pd.to_datetime(date)
    position, realised, cost = (np.asarray(v, dtype=np.float64) for v in (position, realised, cost))
    return pd.DataFrame({"date": date, "timestamp": date, "symbol": symbol, "strategy": strategy,
                         "position": position, "change": position, "expected_return": realised,
                         "realised_return": realised, "realised_at": date, "cost": cost,
                         "pnl": position * realised - cost}, columns=POSITION_COLUMNS)


def test_every_table_is_built(tables):
    assert set(tables) == set(TABLES)
    assert all(isinstance(t, pd.DataFrame) for t in tables.values())


def test_monthly_returns_compound_to_the_total_return(fold, tables):
    monthly = tables["monthly_returns"]
    r = fold.daily[PRIMARY].to_numpy()
    total = np.prod(1.0 + r) - 1.0
    assert list(monthly.index) == [2020, 2021] and list(monthly.columns) == [*MONTHS, "total"]
    assert np.prod(1.0 + monthly["total"]) - 1.0 == pytest.approx(total, rel=1e-12, abs=1e-15)
    cells = monthly[list(MONTHS)].to_numpy()
    assert np.nanprod(1.0 + cells) - 1.0 == pytest.approx(total, rel=1e-12, abs=1e-15)
    assert total == pytest.approx(fold.metrics.loc[PRIMARY, "total_return"], rel=1e-12)
    # January 2020 is before the fold: no data is NaN, not a flat 0
    assert np.isnan(monthly.loc[2020, "Jan"]) and np.isfinite(monthly.loc[2020, "Feb"])
    march = fold.daily.loc["2020-03", PRIMARY]
    assert monthly.loc[2020, "Mar"] == pytest.approx(np.prod(1.0 + march) - 1.0, rel=1e-12)


@pytest.mark.parametrize("strategy", ["model", "buy_and_hold", "momentum", "linear"])
def test_worst_drawdown_depth_is_max_drawdown(fold, strategy):
    table = worst_drawdowns(fold.daily, strategy)
    assert len(table) == 5 and table["depth"].is_monotonic_increasing
    assert table["depth"].iloc[0] == pytest.approx(M.max_drawdown(fold.daily[strategy].to_numpy()), abs=1e-15)
    assert ((table["trough"] >= table["peak"]) | table["peak"].isna()).all()  # NaT: the starting capital
    recovered = table["recovery"].notna()
    assert (table.loc[recovered, "recovery"] > table.loc[recovered, "trough"]).all()


def test_drawdown_episodes_of_a_hand_made_record():
    dates = pd.bdate_range("2021-01-04", periods=8, name="date")
    # day 1 loses from the starting capital (the fold's entry cost makes this common); recovered
    # on day 3; a second, deeper drawdown from day 4's peak is still open at the end.
    r = [-0.02, 0.01, 0.02, 0.01, -0.05, 0.01, -0.01, 0.02]
    table = worst_drawdowns(pd.DataFrame({"s": r}, index=dates), "s")
    assert len(table) == 2
    deep, first = table.iloc[0], table.iloc[1]
    assert deep["peak"] == dates[3] and deep["trough"] == dates[6] and pd.isna(deep["recovery"])
    assert deep["n_days"] == 4 and deep["depth"] == pytest.approx(M.max_drawdown(np.array(r)))
    assert pd.isna(first["peak"]) and first["trough"] == dates[0] and first["recovery"] == dates[2]
    assert first["depth"] == pytest.approx(-0.02) and first["n_days"] == 2
    markdown = tearsheet_markdown({**_empty_tables(), "worst_drawdowns": table})
    assert "| 2 | start | 2021-01-04 | 2021-01-06 | -0.02 | 2 |" in markdown


def _empty_tables() -> dict[str, pd.DataFrame]:
    daily = pd.DataFrame({"s": []}, index=pd.DatetimeIndex([], name="date"), dtype=float)
    return tearsheet_tables(daily, pd.DataFrame(columns=POSITION_COLUMNS), "s")


def test_attribution_sums_to_the_daily_portfolio_returns(fold, tables):
    # portfolio return on d = mean over active symbols of pnl, so sum_s net_s = sum_d daily_d
    attribution = tables["symbol_attribution"]
    assert attribution["net"].sum() == pytest.approx(fold.daily[PRIMARY].sum(), rel=1e-12)
    assert np.allclose(attribution["gross"] - attribution["cost"], attribution["net"], rtol=0, atol=1e-15)
    book = fold.positions[fold.positions["strategy"] == PRIMARY]
    for symbol in ("S0", "S3"):
        rows = book[book["symbol"] == symbol]
        assert attribution.loc[symbol, "hit_rate"] == pytest.approx(
            M.hit_rate(rows["position"].to_numpy(), rows["realised_return"].to_numpy()))
        assert attribution.loc[symbol, "n_days"] == len(rows)


def test_attribution_weights_each_day_by_its_active_symbols():
    # day 1 has two active symbols, day 2 only A: A's day-2 pnl counts in full, day-1 pnl by half
    book = _book([("2021-01-04", "A", 1.0, 0.02, 0.001), ("2021-01-04", "B", -1.0, 0.01, 0.0),
                  ("2021-01-05", "A", 0.5, -0.04, 0.0)])
    dates = pd.DatetimeIndex(pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"]), name="date")
    daily = daily_returns(book, dates, [PRIMARY])
    table = symbol_attribution(daily, book, PRIMARY)
    assert table.loc["A", "net"] == pytest.approx(0.019 / 2 - 0.02)
    assert table.loc["B", "net"] == pytest.approx(-0.01 / 2)
    assert table.loc["A", "cost"] == pytest.approx(0.001 / 2)
    assert table["net"].sum() == pytest.approx(daily[PRIMARY].sum())
    assert list(table.index) == ["B", "A"]  # best first


def test_exposure_turnover_matches_the_metrics(fold, tables):
    exposure = tables["exposure"]
    assert exposure.index.equals(fold.daily.index)
    assert exposure["turnover"].mean() == pytest.approx(fold.metrics.loc[PRIMARY, "turnover"], rel=1e-12)
    assert (exposure["gross"] >= exposure["net"].abs() - 1e-15).all()
    assert exposure["gross"].max() == pytest.approx(0.4)  # the model only ever holds +-0.4


def test_return_distribution_lists_the_benchmark(fold):
    bench = fold.daily["buy_and_hold"].rename("S&P 500") * 0.5
    table = tearsheet_tables(fold.daily, fold.positions, PRIMARY, bench)["return_distribution"]
    assert list(table.columns) == [*fold.daily.columns, "S&P 500"]
    assert table.loc["worst", PRIMARY] == fold.daily[PRIMARY].min()
    assert table.loc["std", "S&P 500"] == pytest.approx(0.5 * fold.daily["buy_and_hold"].std())


def test_png_is_a_png_of_the_requested_size_even_from_a_thread(fold):
    bench = fold.daily["buy_and_hold"].rename("S&P 500") * 0.8
    with ThreadPoolExecutor(1) as pool:  # Dagster runs ops in threads: no pyplot state involved
        png = pool.submit(tearsheet_png, fold.daily, fold.positions, PRIMARY, bench, "fold",
                          dpi=50, size=(14.0, 20.0)).result()
    assert png_size(png) == (700, 1000) and len(png) > 20_000


def _curve_lines(fig):
    """The strategy and benchmark lines of the cumulative return panel (not its zero line)."""
    (ax,) = [a for a in fig.axes if a.get_title().startswith("cumulative return")]
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_identical_series_stay_distinguishable(fold):
    daily = fold.daily.assign(**{"model/ensemble": fold.daily[PRIMARY],
                                 "buy_and_hold@one": fold.daily["buy_and_hold"] + 1e-9})
    bench = fold.daily["buy_and_hold"].rename("S&P 500")
    fig = tearsheet_figure(daily, fold.positions, PRIMARY, bench, dpi=30)
    lines = _curve_lines(fig)
    labels = [line.get_label() for line in lines]
    assert len(lines) == len(daily.columns) + 1
    assert "model/ensemble (= model)" in labels
    assert "buy_and_hold@one (~ buy_and_hold)" in labels
    assert "S&P 500 (= buy_and_hold)" in labels
    styles = {(line.get_color(), str(line.get_linestyle()), str(line.get_marker())) for line in lines}
    assert len(styles) == len(lines)
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "model/ensemble (= model)" in legend


@pytest.mark.parametrize("n_days", [0, 1, 30])
def test_short_records_render(fold, n_days):
    daily = fold.daily.iloc[:n_days]
    positions = fold.positions[fold.positions["date"].isin(daily.index)]
    tables = tearsheet_tables(daily, positions, PRIMARY)
    assert len(tables["exposure"]) == n_days
    assert tables["symbol_attribution"]["net"].sum() == pytest.approx(daily[PRIMARY].sum(), abs=1e-15)
    assert tearsheet_markdown(tables).startswith("## Monthly returns")
    fig = tearsheet_figure(daily, positions, PRIMARY, dpi=20)
    (sharpe,) = [a for a in fig.axes if a.get_title().startswith("rolling Sharpe")]
    assert any("shorter than the 63-day window" in t.get_text() for t in sharpe.texts)
    assert png_size(figure_png(fig)) == (280, 400)


def test_unknown_primary_is_a_config_error(fold):
    with pytest.raises(ConfigError, match="ensemble"):
        tearsheet_tables(fold.daily, fold.positions, "ensemble")
