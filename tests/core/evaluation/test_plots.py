"""Equity/drawdown plot and the shared line styles: coinciding strategies stay visible and labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plusultra_core.evaluation.plots import (equity_drawdown_figure, equity_drawdown_png, overlap_labels,
                                             strategy_styles, wealth_and_drawdown)

DATES = pd.bdate_range("2021-01-04", periods=120, name="date")


def _daily() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    seed0 = rng.normal(5e-4, 0.01, len(DATES))
    bh = rng.normal(3e-4, 0.012, len(DATES))
    return pd.DataFrame({"hybrid/seed=0": seed0, "hybrid/seed=1": rng.normal(0, 0.01, len(DATES)),
                         "hybrid/ensemble": seed0.copy(), "buy_and_hold": bh,
                         "buy_and_hold@exposure": bh + 1e-9, "momentum": rng.normal(0, 0.01, len(DATES))},
                        index=DATES)


def _style(line) -> tuple:
    return line.get_color(), str(line.get_linestyle()), str(line.get_marker())


def test_overlap_labels_name_the_earlier_twin():
    labels = overlap_labels(_daily())
    assert labels == {"hybrid/seed=0": "hybrid/seed=0", "hybrid/seed=1": "hybrid/seed=1",
                      "hybrid/ensemble": "hybrid/ensemble (= hybrid/seed=0)", "buy_and_hold": "buy_and_hold",
                      "buy_and_hold@exposure": "buy_and_hold@exposure (~ buy_and_hold)",
                      "momentum": "momentum"}


def test_a_visible_gap_is_not_an_overlap():
    daily = _daily()
    daily["buy_and_hold@exposure"] = daily["buy_and_hold"] * 0.5
    assert overlap_labels(daily)["buy_and_hold@exposure"] == "buy_and_hold@exposure"


def test_styles_stay_distinct_for_thirty_strategies():
    styles = strategy_styles([f"s{i}" for i in range(30)], n_points=500, emphasis="s0")
    triples = {(s["color"], str(s["linestyle"]), s["marker"]) for s in styles.values()}
    assert len(triples) == 30
    assert styles["s0"]["linewidth"] > styles["s1"]["linewidth"]
    # staggered markers: twins do not put their markers on the same points
    assert styles["s0"]["markevery"] != styles["s2"]["markevery"]


def test_equity_figure_keeps_identical_series_apart():
    daily = _daily()
    fig = equity_drawdown_figure(daily, "twins")
    top, bottom = fig.axes
    lines = [line for line in top.get_lines() if not line.get_label().startswith("_")]
    assert len(lines) == len(daily.columns) and len({_style(line) for line in lines}) == len(lines)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert "hybrid/ensemble (= hybrid/seed=0)" in legend
    # the curves are the data, not a restyled copy of something else
    wealth, drawdown = wealth_and_drawdown(daily)
    assert np.allclose(lines[2].get_ydata(), wealth["hybrid/ensemble"])
    assert np.allclose(bottom.get_lines()[0].get_ydata(), drawdown["hybrid/seed=0"] * 100.0)


@pytest.mark.parametrize("n_days", [0, 1])
def test_equity_png_of_a_short_record(n_days):
    png = equity_drawdown_png(_daily().iloc[:n_days], "short", dpi=30)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
