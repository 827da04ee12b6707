"""Train/serve parity: the agent feeds a checkpoint the very inputs it was trained on.

Training reads `window_tensors` from the store: features computed by the feature stage over each
partition's periods plus a two-year lookback (and, for the ranks, over every tradable symbol).
Serving (`MarketNNPlusUltraAgent`) recomputes them from SQLite over a padded read of
``max_lookback + context_length`` rows. The history assets are materialised on the demo database,
tiny supervised checkpoints are trained on the store's window tensors the way
`supervised_checkpoint` trains (the default pipeline selection: ranks and EWM/Wilder features
included), and for several decision days the agent's window rows — the last ``context_length``
rows of every symbol with a bar that day — must match the stored rows: same timestamps, same
``valid`` flags, and feature values equal to float32 resolution.

Tolerance, and why: both sides compute in float64 and store float32. Exponential/Wilder features
have infinite memory; the agent's shorter history changes them by the weight their declared
lookback leaves to earlier history (< 1e-8, ``kernels.WARMUP_TOL``), so a value may land on the
adjacent float32 step. Allowed: ``|a - b| <= eps32 * (|b| + max|b| of the feature)`` with
``eps32 = 2^-23`` — float32 resolution at the feature's own magnitude (a ratio minus one near 0,
like ``ema_cross_12_26``, has finer float32 steps than its inputs resolve). Measured before the
lookbacks were made honest (1e-4 warm-ups), the EWM-led checkpoint differed by up to 1e-5 in
``rsi_14`` (~170 float32 steps); after: at most one step.

The agent is built with ``risk_lookback=20`` so that the risk analytics' 250-day padding cannot
hide a feature lookback that is too short: the features' own lookbacks decide the read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from dagster import DagsterInstance

from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
from plusultra_core.data.store import ParquetStore
from plusultra_core.features import DEFAULT_REGISTRY
from plusultra_core.history import STORE_DIMS
from plusultra_core.inference.agent import MarketNNPlusUltraAgent
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.constants import WINDOW_TENSORS
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.runner import materialize_history
from tests.core.training.helpers import train_config
from tests.pipeline.conftest import settings_for

CUTOFF = "2018-01-01"
CONTEXT = 16
EPS32 = 2.0 ** -23
# decision days (snapped to the next bar): MSFT alone, a period's first bar, the middle of the
# common history, MSFT's last bar, the last bar of the database
DAYS = ["1995-01-02", "2002-01-01", "2009-03-09", "2017-11-10", "2018-12-31"]
# a selection whose longest lookback is an exponential warm-up (no 252-bar window to pad it)
EWM_LED = ["ret_1d", "rsi_14", "ema_cross_12_26", "atr_14", "xs_rank_mom_20"]


@pytest.fixture(scope="module")
def history(tmp_path_factory, demo_db_path):
    """The demo database's history assets in a fresh store (in-memory instance: values are the point)."""
    root = tmp_path_factory.mktemp("parity")
    settings = settings_for(demo_db_path, root / "store")
    with DagsterInstance.ephemeral() as instance:
        materialize_history(instance, build_definitions(settings), settings, lookback_periods(settings))
    store = ParquetStore(settings.store_path)
    windows = store.read(WINDOW_TENSORS).drop(columns=["shard", "period"])
    windows["timestamp"] = pd.to_datetime(windows["timestamp"])
    return root, settings, store, windows


def _train(history, features: list[str] | None):
    """A tiny supervised checkpoint on the cutoff's window tensors, as `supervised_checkpoint` does
    (``features=None``: the store's feature list, i.e. the pipeline's default selection)."""
    from plusultra_core.training.runner import run_training

    root, _, store, _ = history
    # the window-tensor rows before the cutoff, in one query (what the training fan-in reads;
    # its fit/validation split does not change which inputs the model sees)
    frame = store.read(WINDOW_TENSORS, where="timestamp < $cutoff", params={"cutoff": pd.Timestamp(CUTOFF)},
                       order_by=["symbol", "timestamp"]).drop(columns=list(STORE_DIMS))
    stored = store.read_metadata(WINDOW_TENSORS, store.list_partitions(WINDOW_TENSORS)[0])["metadata"]["features"]
    names = list(stored) if features is None else features
    out = root / ("ckpt-" + ("default" if features is None else "ewm"))
    cfg = train_config(out, feature_names=names, context_length=CONTEXT,
                       trainer={"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1})
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_training(cfg, frame=frame, feature_names=names).path
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def default_checkpoint(history):
    return _train(history, None)


@pytest.fixture(scope="module")
def ewm_checkpoint(history):
    return _train(history, EWM_LED)


def _window_rows(frame: pd.DataFrame, day: pd.Timestamp, context: int) -> pd.DataFrame:
    """The last ``context`` rows up to ``day`` of every symbol with a bar on ``day``."""
    upto = frame[frame["timestamp"] <= day]
    live = upto.loc[upto["timestamp"] == day, "symbol"].unique()
    rows = upto[upto["symbol"].isin(live)].sort_values(["symbol", "timestamp"])
    return rows.groupby("symbol", sort=True).tail(context).reset_index(drop=True)


def _compare(agent, db_path, windows: pd.DataFrame, symbols=None, days=DAYS) -> pd.Series:
    """Max abs difference per feature over all decision days; asserts rows, valid flags, values."""
    names = agent.feature_names
    bar_days = pd.DatetimeIndex(sorted(windows["timestamp"].unique()))
    worst = pd.Series(0.0, index=names)
    with SQLiteMarketDataset(db_path) as dataset:
        for nominal in days:
            day = bar_days[bar_days.searchsorted(pd.Timestamp(nominal))]
            served = _window_rows(agent.window_frame(dataset, day, day, symbols=symbols), day, agent.context_length)
            trained = _window_rows(windows if symbols is None else windows[windows["symbol"].isin(symbols)],
                                   day, agent.context_length)
            assert len(served) and served["symbol"].nunique() == trained["symbol"].nunique(), day
            pd.testing.assert_frame_equal(served[["symbol", "timestamp"]], trained[["symbol", "timestamp"]],
                                          check_dtype=False)
            np.testing.assert_array_equal(served["valid"].to_numpy(), trained["valid"].to_numpy(),
                                          err_msg=f"valid flags differ on {day.date()}")
            assert served["valid"].all(), f"{day.date()}: decision windows should be valid"
            for name in names:
                a = served[name].to_numpy(np.float64)
                b = trained[name].to_numpy(np.float64)
                diff = np.abs(a - b)
                allowed = EPS32 * (np.abs(b) + np.abs(b).max())
                bad = diff > allowed
                assert not bad.any(), (f"{name} on {day.date()}: served {a[bad][:3]} vs trained {b[bad][:3]} "
                                       f"(max abs diff {diff.max():.3g})")
                worst[name] = max(worst[name], float(diff.max()))
    return worst


def test_agent_inputs_equal_the_window_tensors(history, default_checkpoint, demo_db_path):
    _, _, _, windows = history
    agent = MarketNNPlusUltraAgent.from_checkpoint(default_checkpoint, risk_lookback=20)
    # the checkpoint reads the pipeline's default selection, ranks and exponential features included
    assert any(DEFAULT_REGISTRY.get(n).cross_sectional for n in agent.feature_names)
    assert {"rsi_14", "ema_cross_12_26", "macd_hist", "atr_14"} <= set(agent.feature_names)
    assert agent.history_rows == agent.pipeline.max_lookback + CONTEXT
    worst = _compare(agent, demo_db_path, windows)
    assert (worst[[n for n in worst.index if n.startswith("xs_rank_")]] == 0).all()


def test_exponential_features_are_served_as_trained(history, ewm_checkpoint, demo_db_path):
    """The read padding is decided by an exponential warm-up: the declared lookbacks must hold it."""
    _, _, _, windows = history
    agent = MarketNNPlusUltraAgent.from_checkpoint(ewm_checkpoint, risk_lookback=20)
    assert agent.pipeline.max_lookback == DEFAULT_REGISTRY.get("atr_14").lookback
    _compare(agent, demo_db_path, windows)


def test_ranks_of_a_requested_subset_are_over_the_universe(history, ewm_checkpoint, demo_db_path):
    """Asking the agent for one symbol does not turn its cross-sectional ranks into 0.5."""
    _, _, _, windows = history
    agent = MarketNNPlusUltraAgent.from_checkpoint(ewm_checkpoint, risk_lookback=20)
    worst = _compare(agent, demo_db_path, windows, symbols=["NASDAQ"], days=DAYS[1:])  # NASDAQ starts 1999
    assert worst["xs_rank_mom_20"] == 0.0
