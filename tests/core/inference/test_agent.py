"""`MarketNNPlusUltraAgent`: same numbers as `predict_frame`, causal under truncation, data version."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data.contract import INDICATORS, SERIES
from plusultra_core.errors import ConfigError, PartitionKeyError
from plusultra_core.inference.agent import MarketNNPlusUltraAgent
from plusultra_core.inference.predict import PREDICTION_COLUMNS, predict_frame
from plusultra_core.training.config import DataConfig
from plusultra_core.training.runner import build_frame_from_db

from .conftest import CONTEXT, FEATURES

DAY = "2002-02-01"


@pytest.fixture(scope="module")
def agent(tiny_checkpoint):
    return MarketNNPlusUltraAgent.from_checkpoint(tiny_checkpoint)


def test_agent_equals_predict_frame_on_full_history(agent, small_synth_db_path):
    result = agent.predict(small_synth_db_path, DAY, "2002-02-08")
    frame, _ = build_frame_from_db(DataConfig(db_path=str(small_synth_db_path), feature_names=tuple(FEATURES)))
    ref = predict_frame(agent.module, frame, FEATURES, context_length=CONTEXT, start=DAY, end="2002-02-08")
    got = result.frame
    assert len(got) == len(ref) == 6 * 6                                  # 6 symbols x 6 business days
    pd.testing.assert_frame_equal(got[list(PREDICTION_COLUMNS)].reset_index(drop=True), ref,
                                  atol=2e-5, rtol=0)  # EWM features from a finite history: ~1e-6 apart
    assert (got["checkpoint_id"] == agent.checkpoint_id).all() and (got["checkpoint"] == str(agent.checkpoint)).all()
    assert set(result.risk) == {str(pd.Timestamp(d).date()) for d in pd.unique(ref["timestamp"])}
    assert got["predicted_volatility"].gt(0).all() and (got["vol_source"] == "realised").all()
    assert all(r["history_days"] == 250 for r in result.risk.values())


def test_truncating_the_future_changes_nothing(agent, small_synth_db_path, copy_db):
    full = agent.predict(small_synth_db_path, DAY)
    cut = copy_db(small_synth_db_path)
    with sqlite3.connect(cut) as conn:
        n = conn.execute(f"DELETE FROM {SERIES} WHERE timestamp > ?", (DAY,)).rowcount
        conn.execute(f"DELETE FROM {INDICATORS} WHERE timestamp > ?", (DAY,))
    assert n > 6 * 30
    short = agent.predict(cut, DAY)
    pd.testing.assert_frame_equal(full.frame, short.frame)
    assert full.risk == short.risk and len(full.frame) == 6


def test_data_version_tracks_only_rows_read(agent, small_synth_db_path, copy_db):
    late = "2002-04-01"
    base = agent.predict(small_synth_db_path, late).data_version
    assert agent.read_start(late).year == 2001                             # year 2000 is not read
    old, new = copy_db(small_synth_db_path), copy_db(small_synth_db_path)
    with sqlite3.connect(old) as conn:
        conn.execute(f"UPDATE {SERIES} SET volume = volume + 1 WHERE symbol='S0001' AND timestamp='2000-06-01'")
    with sqlite3.connect(new) as conn:
        conn.execute(f"UPDATE {SERIES} SET volume = volume + 1 WHERE symbol='S0001' AND timestamp='2001-06-01'")
    assert agent.predict(old, late).data_version == base
    assert agent.predict(new, late).data_version != base


def test_symbols_empty_days_and_bad_arguments(agent, small_synth_db_path):
    sub = agent.predict(small_synth_db_path, DAY, symbols=["S0003", "S0001"])
    assert sorted(sub.frame["symbol"]) == ["S0001", "S0003"]
    weekend = agent.predict(small_synth_db_path, "2002-02-02", "2002-02-03")
    assert weekend.frame.empty and weekend.risk == {}
    with pytest.raises(ConfigError, match="before start"):
        agent.predict(small_synth_db_path, DAY, "2002-01-01")
    with pytest.raises(ConfigError, match="not a date"):
        agent.predict(small_synth_db_path, "yesterday")
    with pytest.raises(PartitionKeyError, match="NOPE"):
        agent.predict(small_synth_db_path, DAY, symbols=["NOPE"])
    assert np.isfinite(sub.frame[["position", "expected_return"]].to_numpy()).all()
