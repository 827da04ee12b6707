"""`load_supervised` and `predict_frame`: restore, window alignment, validity, determinism, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from plusultra_core.errors import CheckpointError
from plusultra_core.inference.predict import load_supervised, predict_frame
from plusultra_core.training.checkpoints import load_checkpoint, save_checkpoint, sidecar_path
from plusultra_core.training.config import DataConfig
from plusultra_core.training.runner import build_frame_from_db

from .conftest import CONTEXT, FEATURES


@pytest.fixture(scope="module")
def frame(small_synth_db_path):
    frame, names = build_frame_from_db(DataConfig(db_path=str(small_synth_db_path), feature_names=tuple(FEATURES)))
    assert names == FEATURES
    return frame


def _expected_decisions(frame: pd.DataFrame, T: int) -> set:
    """Brute force (a loop is fine in a test): rows whose T-row window is valid and one symbol."""
    out = set()
    valid = frame["valid"].to_numpy()
    sym = frame["symbol"].to_numpy()
    ts = frame["timestamp"].to_numpy()
    for t in range(T - 1, len(frame)):
        lo = t - T + 1
        if sym[lo] == sym[t] and valid[lo:t + 1].all():
            out.add((pd.Timestamp(ts[t]), sym[t]))
    return out


def test_load_supervised_rebuilds_the_trained_module(tiny_checkpoint):
    module, side = load_supervised(tiny_checkpoint)
    assert not module.training and side["feature_names"] == FEATURES
    state, _ = load_checkpoint(tiny_checkpoint)
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_predict_frame_rows_and_invariants(tiny_checkpoint, frame):
    module, _ = load_supervised(tiny_checkpoint)
    preds = predict_frame(module, frame, FEATURES, context_length=CONTEXT)
    assert list(preds.columns) == ["timestamp", "symbol", "p_sell", "p_hold", "p_buy", "position", "expected_return"]
    assert set(zip(preds["timestamp"], preds["symbol"])) == _expected_decisions(frame, CONTEXT)
    assert len(preds) == len(set(zip(preds["timestamp"], preds["symbol"])))
    probs = preds[["p_sell", "p_hold", "p_buy"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all() and (preds["position"].abs() <= 1).all()
    # the policy head's position is p_buy - p_sell
    np.testing.assert_allclose(preds["position"], preds["p_buy"] - preds["p_sell"], atol=1e-5)
    assert preds["timestamp"].is_monotonic_increasing
    # the last bar of the database is a decision (no future target needed at inference)
    assert preds["timestamp"].max() == frame["timestamp"].max()


def test_window_ends_at_the_decision_bar(tiny_checkpoint, frame):
    """Row (t, s) is the model applied to exactly the T rows of s ending at t, inclusive."""
    module, _ = load_supervised(tiny_checkpoint)
    preds = predict_frame(module, frame, FEATURES, context_length=CONTEXT, start="2001-06-01", end="2001-06-01")
    sym = preds["symbol"].iloc[2]
    rows = frame[(frame["symbol"] == sym) & (frame["timestamp"] <= pd.Timestamp("2001-06-01"))].tail(CONTEXT)
    x = torch.from_numpy(rows[FEATURES].to_numpy(np.float32).copy())[None]
    with torch.inference_mode():
        out, _ = module(x)
    got = preds[preds["symbol"] == sym].iloc[0]
    assert got["position"] == pytest.approx(float(out.position[0, 0]), abs=1e-6)
    assert got["p_buy"] == pytest.approx(float(out.probs[0, 0, 2]), abs=1e-6)


def test_invalid_rows_remove_exactly_their_windows(tiny_checkpoint, frame):
    module, _ = load_supervised(tiny_checkpoint)
    broken = frame.copy()
    sym = "S0002"
    k = broken.index[(broken["symbol"] == sym)][300]                       # one bad bar mid-history
    broken.loc[k, "mom_5"] = np.nan
    when = broken.loc[k, "timestamp"]
    before = predict_frame(module, frame, FEATURES, context_length=CONTEXT)
    after = predict_frame(module, broken, FEATURES, context_length=CONTEXT)
    gone = set(zip(before["timestamp"], before["symbol"])) - set(zip(after["timestamp"], after["symbol"]))
    sym_times = frame.loc[frame["symbol"] == sym, "timestamp"].reset_index(drop=True)
    pos = int(np.flatnonzero(sym_times == when)[0])
    assert gone == {(pd.Timestamp(t), sym) for t in sym_times[pos:pos + CONTEXT]}
    assert set(zip(after["timestamp"], after["symbol"])) <= set(zip(before["timestamp"], before["symbol"]))


def test_deterministic_batch_and_order_independent(tiny_checkpoint, frame):
    module, _ = load_supervised(tiny_checkpoint)
    kw = dict(context_length=CONTEXT, start="2001-01-01", end="2001-12-31")
    a = predict_frame(module, frame, FEATURES, **kw)
    b = predict_frame(module, frame, FEATURES, **kw)
    pd.testing.assert_frame_equal(a, b)
    c = predict_frame(module, frame, FEATURES, batch_size=7, **kw)
    pd.testing.assert_frame_equal(a, c, atol=1e-6, rtol=0)
    shuffled = frame.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(a, predict_frame(module, shuffled, FEATURES, **kw), atol=1e-6, rtol=0)
    assert a["timestamp"].min() >= pd.Timestamp("2001-01-01") and a["timestamp"].max() <= pd.Timestamp("2001-12-31")


def test_quantile_head_columns(quantile_checkpoint, frame):
    module, _ = load_supervised(quantile_checkpoint)
    preds = predict_frame(module, frame, FEATURES, context_length=CONTEXT, start="2002-01-01")
    q = preds[["q_0.1", "q_0.5", "q_0.9"]].to_numpy()
    assert len(preds) and (np.diff(q, axis=1) > 0).all()
    np.testing.assert_allclose(preds["expected_return"], preds["q_0.5"], rtol=1e-6)
    probs = preds[["p_sell", "p_hold", "p_buy"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs >= 0).all()
    np.testing.assert_allclose(preds["p_buy"] - preds["p_sell"], preds["position"], atol=1e-9)
    assert (preds["position"] > 0).any() or (preds["position"] < 0).any()


def _copy_ckpt(src, dst_dir):
    dst = dst_dir / "model.pt"
    shutil.copyfile(src, dst)
    shutil.copyfile(sidecar_path(src), sidecar_path(dst))
    return dst


def test_load_supervised_errors_name_the_path(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pt"):
        load_supervised(tmp_path / "nope.pt")
    ckpt = _copy_ckpt(tiny_checkpoint, tmp_path)
    side = json.loads(sidecar_path(ckpt).read_text())

    broken = dict(side)
    del broken["feature_names"]
    sidecar_path(ckpt).write_text(json.dumps(broken))
    with pytest.raises(CheckpointError, match=r"model\.pt: sidecar lacks feature_names"):
        load_supervised(ckpt)

    sidecar_path(ckpt).write_text(json.dumps({**side, "kind": "pretrain"}))
    with pytest.raises(CheckpointError, match="pretraining checkpoint"):
        load_supervised(ckpt)

    # one more feature than the weights were trained with: the input projection does not fit
    sidecar_path(ckpt).write_text(json.dumps({**side, "feature_names": FEATURES + ["rsi_14b"]}))
    with pytest.raises(CheckpointError, match=r"model\.pt: weights do not fit .*shape-mismatch"):
        load_supervised(ckpt)

    state, _ = load_checkpoint(tiny_checkpoint)
    state.pop(sorted(state)[0])
    save_checkpoint(ckpt, state, side)
    with pytest.raises(CheckpointError, match="1 missing"):
        load_supervised(ckpt)

    sidecar_path(ckpt).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_supervised(ckpt)


def test_load_supervised_refuses_weights_its_sidecar_does_not_describe(tiny_checkpoint, tmp_path):
    """New weights beside an old sidecar (a write killed between its two renames) never load."""
    ckpt = _copy_ckpt(tiny_checkpoint, tmp_path)
    state, _ = load_checkpoint(ckpt)
    torch.save({k: v + 1.0 for k, v in state.items()}, ckpt)  # same shapes: only the hash can tell
    with pytest.raises(CheckpointError, match=r"^weights .*model\.pt do not match sidecar .*model\.pt\.json: "
                                              r"the write was interrupted; retrain$"):
        load_supervised(ckpt)


def test_a_sidecar_with_two_feature_names_swapped_is_refused(tiny_checkpoint, tmp_path):
    """Same count, same shapes: only the sidecar's feature_hash (of the trained order) can tell."""
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    ckpt = _copy_ckpt(tiny_checkpoint, tmp_path)
    side = json.loads(sidecar_path(ckpt).read_text())
    assert side["feature_names"] == FEATURES
    swapped = FEATURES[:1] + [FEATURES[3]] + FEATURES[2:3] + [FEATURES[1]] + FEATURES[4:]  # indices 1 and 3
    sidecar_path(ckpt).write_text(json.dumps({**side, "feature_names": swapped}))
    message = (rf"^{ckpt}: feature order differs from the checkpoint's feature_hash {side['feature_hash']} "
               rf"first at index 1: 'vol_std_20' there was 'mom_5' in training \(indices 1 and 3 swapped\)$")
    with pytest.raises(CheckpointError, match=message):
        load_supervised(ckpt)
    module, good = load_supervised(tiny_checkpoint)
    with pytest.raises(CheckpointError, match=message):
        MarketNNPlusUltraAgent(module, {**good, "feature_names": swapped}, ckpt)


def test_check_feature_order_names_the_first_differing_index():
    from plusultra_core.training.checkpoints import check_feature_order, feature_hash

    side = {"feature_names": ["a", "b", "c", "d"], "feature_hash": feature_hash(["a", "b", "c", "d"])}
    check_feature_order(["a", "b", "c", "d"], side, "ck.pt")
    with pytest.raises(CheckpointError, match=r"^ck\.pt: feature order differs from the checkpoint's at index 2: "
                                              r"fed 'd', trained on 'c'$"):
        check_feature_order(["a", "b", "d", "c"], side, "ck.pt")
    with pytest.raises(CheckpointError, match="at index 4: fed 'e', trained on nothing$"):
        check_feature_order(["a", "b", "c", "d", "e"], side, "ck.pt")
    rotated = {**side, "feature_names": ["b", "c", "d", "a"]}  # no single swap restores the hash
    with pytest.raises(CheckpointError, match=r"the 4 feature names do not hash to the sidecar's feature_hash "
                                              r"\w+: the list was reordered or edited after training$"):
        check_feature_order(rotated["feature_names"], rotated, "ck.pt")
    with pytest.raises(CheckpointError, match="sidecar has no feature_hash"):
        check_feature_order(["a"], {"feature_names": ["a"]}, "ck.pt")
