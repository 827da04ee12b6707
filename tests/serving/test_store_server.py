"""The server on a store the graph wrote: its answers are the `inference_frames` asset's frames,
its lineage id is Dagster's checkpoint version, and reloads swap models without losing a request."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

from plusultra_core.data.store import ParquetStore
from plusultra_pipeline.layout import checkpoint_path
from plusultra_pipeline.serving.holder import StoreSource
from tests.serving.conftest import CUTOFF

SEEDS = (0,)
STORED_DAYS = ["2018-01-02", "2018-01-03", "2018-01-04", "2018-01-05"]


def _stored(store_root, day: str) -> tuple[pd.DataFrame, dict]:
    store = ParquetStore(store_root)
    frame = store.read("inference_frames", [{"day": day}])
    meta = store.read_metadata("inference_frames", {"day": day})["metadata"]
    return frame.drop(columns=[c for c in ("day",) if c in frame]), meta


def _served(body: dict) -> pd.DataFrame:
    frame = pd.DataFrame(body["frame"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def test_predictions_equal_the_stored_inference_frames(served_store, running):
    with running(StoreSource(served_store["store"], SEEDS), database=served_store["db"]) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            health = client.get("/health").json()
            for day in STORED_DAYS:
                stored, meta = _stored(served_store["store"], day)
                body = client.post("/predict", json={"date": day}).raise_for_status().json()
                served = _served(body)
                assert len(stored) > 0 and body["rows"] == len(stored)
                assert list(served.columns) == list(stored.columns)  # the asset's columns, in its order
                a = served.sort_values("symbol").reset_index(drop=True)
                b = stored.sort_values("symbol").reset_index(drop=True)
                for col in ("timestamp", "symbol", "vol_source", "checkpoint", "checkpoint_id"):
                    assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), (day, col)
                # float32 tolerance: the asset scored four days in one batch, the server one day, and
                # the CPU's matmul kernels round a different batch shape differently (seen: 3e-8 on p_hold)
                for col in ("p_sell", "p_hold", "p_buy", "position", "expected_return", "weight",
                            "predicted_volatility", "risk_contribution"):
                    np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-6,
                                               atol=1e-7, err_msg=f"{day} {col}")
                for key, value in meta["risk"].items():
                    got = body["risk"][day][key]
                    if isinstance(value, float):
                        assert (got is None and value != value) or got == pytest.approx(value, rel=1e-9, abs=1e-12), key
                    else:
                        assert got == value, key
                assert not body["in_sample"] and body["warnings"] == []
                # the server's lineage id is Dagster's data version of the checkpoint that made the day
                assert health["model"]["lineage_id"] == meta["checkpoint_version"]
            # a subset is the same rows (cross-sectional features still rank over the universe)
            one = _served(client.post("/predict", json={"date": STORED_DAYS[0], "symbols": ["SP500"]}).json())
            full, _ = _stored(served_store["store"], STORED_DAYS[0])
            assert one["position"].tolist() == pytest.approx(full.loc[full["symbol"] == "SP500", "position"].tolist(),
                                                             rel=1e-9)
            # a range is the days' frames together
            both = client.post("/predict", json={"date": STORED_DAYS[0], "end": STORED_DAYS[-1]}).json()
            assert both["rows"] == sum(len(_stored(served_store["store"], d)[0]) for d in STORED_DAYS)
            assert sorted(both["risk"]) == STORED_DAYS
            # ... and reads what the asset's one run over those days read (the version of the rows read)
            assert both["data_version"] == _stored(served_store["store"], STORED_DAYS[0])[1]["market_data_version"]


def test_health_config_and_metrics_describe_the_served_model(served_store, running):
    with running(StoreSource(served_store["store"], SEEDS), database=served_store["db"]) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            health = client.get("/health").json()
            assert health["status"] == "ok" and health["model"]["cutoff"] == CUTOFF
            assert health["model"]["members"] == [str(checkpoint_path(served_store["store"], "supervised", CUTOFF, 0))]
            assert health["checkpoint_age_seconds"] >= 0
            config = client.get("/config").json()
            assert config["stored_cutoffs"] == [CUTOFF] and config["context_length"] == 64
            assert config["history_rows"] >= config["context_length"] and len(config["feature_names"]) > 5
            assert config["limits"] == {"max_symbols": 1000, "max_days": 366, "max_body_bytes": 8 << 20,
                                        "max_concurrent_predictions": 4, "frame_cache_entries": 4}
            assert config["auth"] is False
            client.post("/predict", json={"date": STORED_DAYS[0]}).raise_for_status()
            client.post("/predict", json={"date": "2018-02-30"})
            text = client.get("/metrics").text
            assert 'plusultra_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text
            assert 'plusultra_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in text
            assert "plusultra_model_forward_seconds_count 1.0" in text  # 2 windows: one batch
            assert f'plusultra_model_info{{checkpoint_id="{health["model"]["checkpoint_id"]}",cutoff="{CUTOFF}"' in text
            age = float(next(line.split()[1] for line in text.splitlines()
                             if line.startswith("plusultra_checkpoint_age_seconds ")))
            assert age >= health["checkpoint_age_seconds"]
            assert client.get("/docs").status_code == 200 and "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.fixture
def two_cutoffs(served_store, tmp_path):
    """A store holding only checkpoints: the graph's cutoff and a newer one with other weights,
    written by the real checkpoint writer (so it has its own SHA-256 and lineage id)."""
    from plusultra_core.training.checkpoints import load_checkpoint, save_checkpoint

    root = tmp_path / "store"
    src = checkpoint_path(served_store["store"], "supervised", CUTOFF, 0)
    first = checkpoint_path(root, "supervised", CUTOFF, 0)
    first.parent.mkdir(parents=True)
    for suffix in ("", ".json"):
        shutil.copyfile(str(src) + suffix, str(first) + suffix)
    state, side = load_checkpoint(src)
    torch.manual_seed(1)
    newer = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    second = checkpoint_path(root, "supervised", "2018-02-01", 0)
    second.parent.mkdir(parents=True)
    save_checkpoint(second, newer, {**side, "cutoff": "2018-02-01"})
    return root


def test_reload_newest_named_and_corrupt(two_cutoffs, served_store, running):
    day = {"date": "2018-02-06"}
    with running(StoreSource(two_cutoffs, SEEDS), database=served_store["db"]) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/health").json()["model"]["cutoff"] == "2018-02-01"  # newest at start
            newest = client.post("/predict", json=day).json()
            named = client.post("/reload", json={"cutoff": CUTOFF}).raise_for_status().json()
            assert named["model"]["cutoff"] == CUTOFF and named["previous"]["cutoff"] == "2018-02-01"
            assert named["changed"] and named["model"]["lineage_id"] != named["previous"]["lineage_id"]
            older = client.post("/predict", json=day).json()
            assert older["model"]["cutoff"] == CUTOFF
            assert older["frame"]["position"] != newest["frame"]["position"]  # another model answers
            # a newer cutoff lands in the store; an empty reload picks it up -- but it is corrupt
            bad = checkpoint_path(two_cutoffs, "supervised", "2018-03-01", 0)
            bad.parent.mkdir(parents=True)
            shutil.copyfile(checkpoint_path(two_cutoffs, "supervised", "2018-02-01", 0).with_suffix(".pt.json"),
                            str(bad) + ".json")
            bad.write_bytes(b"not a checkpoint")
            failed = client.post("/reload")
            assert failed.status_code == 409
            assert failed.json()["detail"].startswith("reload failed, still serving ") and CUTOFF in failed.json()["detail"]
            assert "do not match sidecar" in failed.json()["detail"]
            assert client.get("/health").json()["model"]["cutoff"] == CUTOFF
            again = client.post("/predict", json=day).json()
            assert again["frame"]["position"] == older["frame"]["position"]
            assert 'plusultra_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text
            # never a path: names outside the store's cutoffs are refused, naming what exists
            for cutoff, status in (("../../etc", 422), ("2019-01-01", 404), ("/tmp/x.pt", 422)):
                r = client.post("/reload", json={"cutoff": cutoff})
                assert r.status_code == status and r.json()["field"] == "body.cutoff", r.text
                assert "stored cutoffs: 2018-01-01, 2018-02-01, 2018-03-01" in r.json()["detail"]
            assert client.post("/reload", json={"path": "/tmp/x.pt"}).json()["field"] == "body.path"


def test_reload_under_load_loses_no_request(two_cutoffs, served_store, running):
    """Clients predict while the model flips between two cutoffs: every answer is a 200 from one of
    the two models, complete and consistent (its rows carry the id of the model that says it answered)."""
    cutoffs = [CUTOFF, "2018-02-01"]
    errors, answers = [], []
    stop = threading.Event()
    with running(StoreSource(two_cutoffs, SEEDS), database=served_store["db"]) as (url, _):
        def client_loop():
            with httpx.Client(base_url=url, timeout=60) as client:
                while not stop.is_set():
                    r = client.post("/predict", json={"date": "2018-02-06"})
                    if r.status_code != 200:
                        errors.append(r.text)
                        continue
                    body = r.json()
                    answers.append((body["model"]["cutoff"], set(body["frame"]["checkpoint_id"]),
                                    body["model"]["checkpoint_id"]))

        threads = [threading.Thread(target=client_loop) for _ in range(3)]
        for t in threads:
            t.start()
        with httpx.Client(base_url=url, timeout=60) as admin:
            for i in range(8):  # each reload lands while requests are in flight on the other model
                seen = len(answers)
                admin.post("/reload", json={"cutoff": cutoffs[i % 2]}).raise_for_status()
                deadline = time.monotonic() + 30
                while len(answers) < seen + 3 and not errors and time.monotonic() < deadline:
                    time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert len(answers) >= 24 and {a[0] for a in answers} == set(cutoffs)
    assert all(ids == {model_id} for _, ids, model_id in answers)
