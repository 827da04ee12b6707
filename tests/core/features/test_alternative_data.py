"""The worked alternative-data example (README "Adding an alternative series"): the Fama-French
factors shipped in `arch`, stored as a market-wide series with a 30-day publication lag and
turned into the ``alternative``-tagged feature ``alt_ff_mkt_mean_63``, end to end from SQLite.

Causality through the publication lag: rewriting every FF value that was not yet *public* on day
``t`` (observation date + lag > t) leaves every feature up to ``t`` unchanged; rewriting one that
was public changes them (so the test can fail)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
from plusultra_core.features import FeaturePipeline

T = pd.Timestamp("2016-06-30")
LAG = pd.Timedelta(days=30)  # the demo's FF publication_lag_days


def _features(db) -> pd.DataFrame:
    panel = SQLiteMarketDataset(db).load_panel(symbols=["SP500"], start="2015-01-01", end="2016-12-31")
    return FeaturePipeline(tags=["alternative"]).transform_panel(panel)  # VIX ones: computed, unused here


def _rewrite_ff(src, dst, where: str) -> int:
    shutil.copy(src, dst)
    with sqlite3.connect(dst) as conn:
        return conn.execute(f"UPDATE indicators SET value = value + 0.5 WHERE symbol = 'FF' AND {where}").rowcount


@pytest.fixture(scope="module")
def baseline(demo_db_path):
    return _features(demo_db_path)


def test_the_example_is_registered_by_tag(baseline):
    assert "alt_ff_mkt_mean_63" in baseline.columns
    assert np.isfinite(baseline["alt_ff_mkt_mean_63"]).mean() > 0.8


def test_unpublished_values_never_reach_a_feature(demo_db_path, baseline, tmp_path):
    cut = str((T - LAG).date())  # observations after this were published after T
    assert _rewrite_ff(demo_db_path, tmp_path / "late.sqlite", f"timestamp > '{cut}'") > 0
    changed = _features(tmp_path / "late.sqlite")
    ts = baseline.index.get_level_values("timestamp")
    col = "alt_ff_mkt_mean_63"
    pd.testing.assert_series_equal(changed.loc[ts <= T, col], baseline.loc[ts <= T, col])
    assert not np.allclose(changed.loc[ts > T + pd.Timedelta(days=31), col],
                           baseline.loc[ts > T + pd.Timedelta(days=31), col])


def test_a_published_value_does_reach_it(demo_db_path, baseline, tmp_path):
    # the May 2016 factor return (stamped 2016-05-31) became public on 2016-06-30 = T
    assert _rewrite_ff(demo_db_path, tmp_path / "early.sqlite", "timestamp = '2016-05-31'") > 0
    changed = _features(tmp_path / "early.sqlite")
    ts = baseline.index.get_level_values("timestamp")
    col = "alt_ff_mkt_mean_63"
    assert not np.allclose(changed.loc[ts == T, col], baseline.loc[ts == T, col])
    assert np.allclose(changed.loc[ts < T, col], baseline.loc[ts < T, col], equal_nan=True)
