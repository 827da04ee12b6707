"""Per-cutoff training windows: the fit ends just before a purged validation slice right before
the cutoff, moves with the cutoff, and a rolling window / recency weighting do what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plusultra_core.errors import ConfigError
from plusultra_core.training.config import DataConfig
from plusultra_core.training.datamodule import WindowDataModule
from plusultra_core.walkforward import CutoffWindow, cutoff_split, training_frame
from tests.core.training.synthetic import FEATURES, ar1_frame

FRAME = ar1_frame(n_symbols=3, n_days=2600, seed=3)   # business days 2001-01-01 .. ~2010-12
CALENDAR = pd.DatetimeIndex(np.unique(FRAME["timestamp"]))


def split_at(cutoff, window: CutoffWindow) -> tuple[WindowDataModule, object]:
    frame = training_frame(FRAME, cutoff, window.purge_bars,
                           fit_start=cutoff_split(cutoff, window).fit_start)
    split = cutoff_split(cutoff, window, frame)
    cfg = DataConfig(context_length=32, horizon=5, train_end=str(split.fit_end.date()), val_end=None,
                     purge_bars=window.purge_bars, block_length=8, blocks_per_batch=2)
    return WindowDataModule.from_frame(frame, cfg, FEATURES), split


def bars_between(a, b) -> int:
    """Trading days in (a, b] of the frame's calendar."""
    return int(((CALENDAR > pd.Timestamp(a)) & (CALENDAR <= pd.Timestamp(b))).sum())


@pytest.mark.parametrize("cutoff", ["2006-01-01", "2008-07-01", "2010-06-01"])
def test_last_fitted_target_is_within_purge_plus_validation_of_the_cutoff(cutoff):
    window = CutoffWindow(purge_bars=10, validation_months=6)
    dm, split = split_at(cutoff, window)
    summary = dm.split_summary()
    last_fit = pd.Timestamp(summary["train"]["last_target"])
    # every bar of the slice between the last fitted target and the cutoff is validation or purge
    validation_bars = bars_between(split.fit_end, cutoff)
    assert bars_between(last_fit, cutoff) <= window.purge_bars + validation_bars
    assert last_fit <= split.fit_end < pd.Timestamp(cutoff)
    # six months of validation is about 126 bars: the fit ends about half a year before the cutoff
    assert 120 <= validation_bars <= 135
    # validation windows start after the fit's targets plus the purge, and end before the cutoff
    first_val = pd.Timestamp(summary["val"]["first_target"])
    assert bars_between(last_fit, first_val) > window.purge_bars
    assert pd.Timestamp(summary["val"]["last_target"]) < pd.Timestamp(cutoff)
    assert bars_between(summary["val"]["last_target"], cutoff) >= window.purge_bars
    assert "test" not in dm.splits


def test_moving_the_cutoff_by_one_month_moves_the_fit_end_by_one_month():
    window = CutoffWindow(purge_bars=10, validation_months=12)
    ends = []
    for cutoff in pd.date_range("2007-01-01", periods=6, freq="MS"):
        dm, _ = split_at(cutoff, window)
        ends.append(pd.Timestamp(dm.split_summary()["train"]["last_target"]))
    gaps = np.diff(pd.DatetimeIndex(ends)).astype("timedelta64[D]").astype(int)
    assert np.all((gaps >= 27) & (gaps <= 34)), gaps


def test_rolling_window_fits_on_the_last_years_only():
    window = CutoffWindow(purge_bars=10, validation_months=6, window="rolling", rolling_years=3)
    dm, split = split_at("2009-01-01", window)
    first = pd.Timestamp(dm.split_summary()["train"]["first_target"])
    assert split.fit_start == pd.Timestamp("2006-01-01")
    assert pd.Timestamp("2006-01-01") <= first <= pd.Timestamp("2006-03-15")
    expanding, _ = split_at("2009-01-01", CutoffWindow(purge_bars=10, validation_months=6))
    assert pd.Timestamp(expanding.split_summary()["train"]["first_target"]) < pd.Timestamp("2001-06-01")


def test_recency_weighting_draws_recent_blocks_more_often():
    window = CutoffWindow(purge_bars=10, validation_months=6)
    frame = training_frame(FRAME, "2010-01-01", 10)
    split = cutoff_split("2010-01-01", window, frame)
    times = {}
    for halflife in (None, 365.0):
        cfg = DataConfig(context_length=32, horizon=5, train_end=str(split.fit_end.date()), val_end=None,
                         purge_bars=10, block_length=8, blocks_per_batch=2, recency_halflife_days=halflife)
        dm = WindowDataModule.from_frame(frame, cfg, FEATURES, seed=0)
        ft = np.asarray(dm.dataset.first_target_time, dtype="datetime64[ns]")
        drawn = np.concatenate([np.asarray(b) for b in dm.train_dataloader().sampler])
        times[halflife] = pd.DatetimeIndex(ft[drawn])
    uniform, weighted = times[None], times[365.0]
    assert len(uniform) == len(weighted)
    # a one-year half-life on ~8 years of blocks: the median drawn block is far more recent
    assert weighted.asi8.mean() > uniform.asi8.mean() + pd.Timedelta(days=500).value
    assert (weighted < pd.Timestamp("2004-01-01")).mean() < 0.1 * (uniform < pd.Timestamp("2004-01-01")).mean()


@pytest.mark.parametrize("kwargs, key", [
    ({"purge_bars": -1}, "purge_bars"), ({"validation_months": 0}, "validation_months"),
    ({"window": "sliding"}, "window"), ({"window": "rolling"}, "rolling_years"),
    ({"rolling_years": 2}, "rolling_years"), ({"recency_halflife_years": 0}, "recency_halflife_years")])
def test_bad_window_settings_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        CutoffWindow(**kwargs)
