"""The server on one tiny checkpoint (OHLCV features only, small synthetic database): bad requests
are 4xx answers naming the field, bars sent by the caller predict what the database predicts,
the bearer token guards everything but liveness, and 8 clients x 50 requests see no error."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from plusultra_pipeline.serving.holder import CheckpointSource

DAY = "2002-03-01"    # the small synthetic database runs 2000-01-03 .. 2002-04-19
LIMITS = {"max_symbols": 4, "max_days": 31, "max_body_bytes": 1 << 20}


@pytest.fixture(scope="module")
def server(tiny_checkpoint, small_synth_db_path, running):
    with running(CheckpointSource(tiny_checkpoint), database=small_synth_db_path, **LIMITS) as (url, app):
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def _bars(db, day: str, symbols=None) -> dict:
    with sqlite3.connect(db) as conn:
        rows = pd.read_sql_query("SELECT * FROM series WHERE timestamp <= ? ORDER BY symbol, timestamp", conn,
                                 params=[day])
    if symbols is not None:
        rows = rows[rows["symbol"].isin(symbols)]
    return {c: rows[c].tolist() for c in ("symbol", "timestamp", "open", "high", "low", "close", "volume")}


BAD = [
    ({"date": DAY, "symbols": ["NOPE"]}, 422, "body.symbols", "unknown or non-tradable symbol(s) in the database: NOPE"),
    ({"date": "2002-02-30"}, 422, "body.date", "day value is outside expected range"),
    ({"date": 20020301}, 422, "body.date", "expected a date YYYY-MM-DD"),
    ({"date": "01/03/2002"}, 422, "body.date", "expected a date YYYY-MM-DD"),
    ({"date": "2031-01-02"}, 422, "body.date", "after the last bar in the database (2002-04-19)"),
    ({"date": DAY, "end": "2002-02-01"}, 422, "body.end", "is before date"),
    ({"date": "2002-01-01", "end": "2002-04-01"}, 422, "body.end", "at most 31 per request"),
    ({"date": DAY, "symbols": ["S0000", "S0001", "S0002", "S0003", "S0004"]}, 422, "body.symbols", "5 symbols; at most 4"),
    ({"date": DAY, "symbols": []}, 422, "body.symbols", "empty list"),
    ({"date": DAY, "symbols": [""]}, 422, "body.symbols.0", "at least 1 character"),
    ({"date": DAY, "symbol": "S0000"}, 422, "body.symbol", "Extra inputs are not permitted"),
    ({}, 422, "body.date", "Field required"),
    ({"date": DAY, "bars": {"symbol": ["S0000"], "timestamp": [DAY], "open": [1.0], "high": [1.0], "low": [1.0],
                            "close": [1.0]}}, 422, "body.bars.volume", "Field required"),
    ({"date": DAY, "bars": {"symbol": ["S0000", "S0000"], "timestamp": [DAY], "open": [1.0], "high": [1.0],
                            "low": [1.0], "close": [1.0], "volume": [1.0]}}, 422, "body.bars", "differ in length"),
    ({"date": DAY, "bars": {"symbol": ["S0000"], "timestamp": [DAY], "open": [1.0], "high": [0.5], "low": [1.0],
                            "close": [1.0], "volume": [1.0]}}, 422, "body.bars", "high"),
]


@pytest.mark.parametrize("body, status, field, words", BAD, ids=[f"{b[2]}:{b[3][:24]}" for b in BAD])
def test_bad_requests_are_4xx_naming_the_field(server, body, status, field, words):
    r = server.post("/predict", json=body)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["field"] == field and answer["detail"].startswith(field), answer
    assert words in answer["detail"] and "Traceback" not in r.text and "\n" not in answer["detail"]


def test_malformed_and_oversized_bodies(server):
    r = server.post("/predict", content=b'{"date": "2002-03-01",', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body" and "invalid JSON" in r.json()["detail"]
    big = b'{"date": "2002-03-01", "symbols": [' + b'"S0000",' * 300_000 + b'"S0001"]}'
    r = server.post("/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body" and "over the limit of 1048576 bytes" in r.json()["detail"]

    def chunks():  # no content-length: the limit is counted while reading
        for _ in range(40):
            yield b" " * 65536

    r = server.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert server.post("/reload", json={"cutoff": "2002-01-01"}).json()["field"] == "body.cutoff"
    assert server.get("/nope").status_code == 404
    assert server.get("/health").json()["status"] == "ok"  # none of it hurt the server


def test_caller_supplied_bars_predict_what_the_database_predicts(server, small_synth_db_path):
    symbols = ["S0000", "S0003"]
    from_db = server.post("/predict", json={"date": DAY, "symbols": symbols}).raise_for_status().json()
    sent = server.post("/predict", json={"date": DAY, "symbols": symbols,
                                         "bars": _bars(small_synth_db_path, DAY, symbols)}).raise_for_status().json()
    a, b = pd.DataFrame(from_db["frame"]), pd.DataFrame(sent["frame"])
    assert len(a) == 2 and a["symbol"].tolist() == b["symbol"].tolist() == symbols
    # the bars start at the database's first bar, the database read at the agent's padded start:
    # the exponential (Wilder) RSI differs by less than its declared warm-up tolerance
    for col in ("p_sell", "p_hold", "p_buy", "position", "expected_return", "predicted_volatility"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-5, atol=1e-7, err_msg=col)
    assert sent["data_version"] != from_db["data_version"]  # it read other rows: the bars

    too_few = _bars(small_synth_db_path, DAY, ["S0000"])
    too_few = {k: v[-30:] for k, v in too_few.items()}
    r = server.post("/predict", json={"date": DAY, "bars": too_few}).raise_for_status().json()
    assert r["rows"] == 0 and any("less than" in w for w in r["warnings"])  # a short history: no window, said so
    assert r["in_sample"] and "in-sample" in r["warnings"][0]  # a command-line checkpoint saw every day
    wrong = server.post("/predict", json={"date": DAY, "symbols": ["S0001"], "bars": too_few})
    assert wrong.status_code == 422 and wrong.json()["detail"] == "body.symbols: unknown or non-tradable symbol(s) in the bars: S0001"
    unsorted = {k: v[::-1] for k, v in too_few.items()}
    r = server.post("/predict", json={"date": DAY, "bars": unsorted})
    assert r.status_code == 422 and r.json()["field"] == "body.bars" and "timestamps_increasing" in r.json()["detail"]


def test_the_bearer_token_guards_everything_but_liveness(tiny_checkpoint, small_synth_db_path, running):
    with running(CheckpointSource(tiny_checkpoint), database=small_synth_db_path, token="s3cret") as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/health").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
                r = client.post("/predict", json={"date": DAY}, headers=headers)
                assert r.status_code == 401 and r.json()["field"] == "header.authorization", (headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert client.get("/metrics", headers=headers).status_code == 401
                assert client.post("/reload", headers=headers).status_code == 401
            refused = client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).text
            assert 'plusultra_requests_total{endpoint="/predict",method="POST",status="401"} 3.0' in refused
            # unauthenticated garbage is refused before it is parsed
            assert client.post("/predict", content=b"{", headers={"content-type": "application/json"}).status_code == 401
            ok = {"Authorization": "Bearer s3cret"}
            assert client.post("/predict", json={"date": DAY}, headers=ok).json()["rows"] == 6
            assert client.get("/config", headers=ok).json()["auth"] is True


def test_refuses_a_network_address_without_a_token():
    from plusultra_core.errors import ConfigError
    from plusultra_pipeline.serving.settings import ServeSettings

    with pytest.raises(ConfigError, match="--host 0.0.0.0 is not a loopback address: set PLUSULTRA_SERVE_TOKEN"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", token="t").token == "t" and ServeSettings(host="::1").token is None


@pytest.mark.slow
def test_eight_clients_fifty_requests_each_without_an_error(server, capsys):
    symbols = [f"S{i:04d}" for i in range(6)]
    # six days against a four-entry frame cache: concurrent hits, misses and evictions (a miss reads
    # the universe; how fast that is, is bench_serving's subject, not this test's)
    days = pd.bdate_range("2002-02-01", periods=6).strftime("%Y-%m-%d").tolist()
    latencies, errors = [], []
    url = str(server.base_url)

    def client_loop(k: int):
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(50):
                body = {"date": days[(k * 50 + i) % len(days)], "symbols": [symbols[(k + i) % len(symbols)]]}
                t0 = time.perf_counter()
                r = client.post("/predict", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200 or r.json()["rows"] != 1:
                    errors.append((body, r.status_code, r.text[:200]))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert not errors, errors[:3]
    ms = np.asarray(latencies) * 1e3
    p50, p99 = np.percentile(ms, [50, 99])
    with capsys.disabled():
        print(f"\nserving load: 8 clients x 50 one-symbol requests: {len(ms)} ok, 0 errors, "
              f"{len(ms) / wall:.1f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    metrics = server.get("/metrics").text
    count = next(float(line.split()[1]) for line in metrics.splitlines()
                 if line.startswith('plusultra_requests_total{endpoint="/predict",method="POST",status="200"}'))
    assert count >= 400


def test_a_database_gone_under_the_server_is_a_503_naming_it(tiny_checkpoint, small_synth_db_path, copy_db, running):
    db = copy_db(small_synth_db_path)
    with running(CheckpointSource(tiny_checkpoint), database=db) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/predict", json={"date": DAY}).status_code == 200
            db.unlink()
            r = client.post("/predict", json={"date": DAY})
            assert r.status_code == 503 and r.json()["field"] == "database", r.text
            assert r.json()["detail"] == "database: the server's database is unavailable (No such file or directory)"
            assert client.get("/health").status_code == 200


def test_reload_of_a_single_checkpoint_rereads_its_file(tiny_checkpoint, small_synth_db_path, tmp_path, running):
    """``--checkpoint`` mode: a retrained file at the same path is picked up by an empty reload."""
    import shutil

    import torch

    from plusultra_core.training.checkpoints import load_checkpoint, save_checkpoint

    path = tmp_path / "supervised.pt"
    for suffix in ("", ".json"):
        shutil.copyfile(str(tiny_checkpoint) + suffix, str(path) + suffix)
    with running(CheckpointSource(path), database=small_synth_db_path) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            before = client.post("/predict", json={"date": DAY}).json()
            state, side = load_checkpoint(path)
            torch.manual_seed(3)
            save_checkpoint(path, {k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() else v
                                   for k, v in state.items()}, side)
            reloaded = client.post("/reload", json={}).raise_for_status().json()
            assert reloaded["changed"] and reloaded["model"]["lineage_id"] != reloaded["previous"]["lineage_id"]
            after = client.post("/predict", json={"date": DAY}).json()
            assert after["model"]["checkpoint_id"] == reloaded["model"]["checkpoint_id"]
            assert after["frame"]["position"] != before["frame"]["position"]


@pytest.mark.parametrize("symbols", [["S0000"], ["S0002", "S0004"], None])
def test_the_shared_universe_read_answers_what_the_agent_answers(server, tiny_checkpoint, small_synth_db_path,
                                                                symbols):
    """A subset predicted from the universe's window frame (the server's shared read) equals the
    agent's own prediction of that subset, row for row, risk included."""
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    body = {"date": "2002-03-04", "end": "2002-03-08", **({"symbols": symbols} if symbols else {})}
    for _ in range(2):  # a miss, then a hit of the same range
        served = server.post("/predict", json=body).raise_for_status().json()
        direct = MarketNNPlusUltraAgent.from_checkpoint(tiny_checkpoint).predict(
            small_synth_db_path, body["date"], body["end"], symbols=symbols)
        a = pd.DataFrame(served["frame"])
        b = direct.frame.assign(timestamp=direct.frame["timestamp"].dt.strftime("%Y-%m-%d"))
        assert len(a) == len(b) == 5 * (len(symbols) if symbols else 6)
        assert list(a.columns) == list(b.columns) and a["symbol"].tolist() == b["symbol"].tolist()
        for col in ("p_sell", "p_hold", "p_buy", "position", "expected_return", "weight",
                    "predicted_volatility", "risk_contribution"):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12, atol=0, err_msg=col)
        assert a["timestamp"].tolist() == b["timestamp"].tolist()
        for day, risk in direct.risk.items():
            for key, value in risk.items():
                got = served["risk"][day][key]
                if isinstance(value, float):
                    assert (got is None and value != value) or got == pytest.approx(value, rel=1e-12), (day, key)
                else:
                    assert got == value, (day, key)
        if symbols is None:  # the universe's rows are exactly what the agent read
            assert served["data_version"] == direct.data_version


def test_a_new_candle_is_seen_at_once(tiny_checkpoint, small_synth_db_path, copy_db, running):
    """The shared read is keyed by the database file's state: an appended day is predicted, not a
    stale cached range."""
    from plusultra_core.data.demo_db import append_trading_day

    db = copy_db(small_synth_db_path)
    with running(CheckpointSource(tiny_checkpoint), database=db) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            before = client.post("/predict", json={"date": "2002-04-18", "end": "2002-04-22"}).json()
            assert before["rows"] == 12 and sorted(before["risk"]) == ["2002-04-18", "2002-04-19"]
            assert client.post("/predict", json={"date": "2002-04-22"}).json()["field"] == "body.date"
            day = append_trading_day(db)
            assert str(day.date()) == "2002-04-22"
            after = client.post("/predict", json={"date": "2002-04-18", "end": "2002-04-22"}).json()
            assert after["rows"] == 18 and sorted(after["risk"]) == ["2002-04-18", "2002-04-19", "2002-04-22"]
            assert after["data_version"] != before["data_version"]
