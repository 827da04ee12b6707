"""Serving benchmark: ``POST /predict`` of the real ``plusultra serve`` process, beside its forward time.

Setup (not timed): a synthetic database (`build_synthetic_database`, seed 11) and the reference
size checkpoint of `bench_inference` (``temporal_hybrid`` width 128, 4 layers, context 128, 28
features, untrained weights). The server is ``python -m plusultra_pipeline.cli serve
--checkpoint ... --db ...`` on a free loopback port, one torch thread, started once; a few warm-up
requests run first.

Measured, from one HTTP client (httpx, keep-alive) in this process:
- *1 symbol, a new day each*: nine one-symbol predictions, each for a day not asked before (each
  a miss of the server's shared universe read, `serving.frames`);
- *1 symbol, same day*: ``requests_1`` sequential one-symbol predictions for the database's last
  day (symbols round-robin: after the first, hits of the shared read), then the same with
  ``clients`` concurrent clients;
- *all symbols*: ``requests_all`` sequential predictions of every symbol for the last day.
Each row: requests/s, p50 and p99 latency (client side: HTTP, JSON, read, features, forward,
risk). Beside it, the model forward time per request in the same run, read from the server's own
``plusultra_model_forward_seconds`` histogram (the delta of its sum and count over the timed
requests): the floor any serving path pays.

``python -m bench.bench_serving --symbols 100`` runs a reduced scale.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import BenchResult, measure, print_results, scale_parser

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _forward(client) -> tuple[float, float]:
    """``(sum seconds, count)`` of the server's forward-time histogram."""
    text = client.get("/metrics").text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("plusultra_model_forward_seconds_")}
    return values["plusultra_model_forward_seconds_sum"], values["plusultra_model_forward_seconds_count"]


def _timed(url: str, bodies: list[dict], clients: int) -> dict:
    """Send ``bodies`` over ``clients`` keep-alive connections; latencies and requests/s."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    chunks = [bodies[k::clients] for k in range(clients)]

    def loop(mine):
        with httpx.Client(base_url=url, timeout=300) as client:
            for body in mine:
                t0 = time.perf_counter()
                r = client.post("/predict", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200 or not r.json()["rows"]:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    ms = np.asarray(latencies) * 1e3
    p50, p99 = np.percentile(ms, [50, 99])
    return {"requests": len(ms), "clients": clients, "requests_per_s": round(len(ms) / wall, 2),
            "p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1), "max_ms": round(float(ms.max()), 1),
            "p50_s": float(p50) / 1e3}


def _wait(url: str, proc, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.2)


def run(n_symbols: int = 500, n_days: int = 700, requests_1: int = 60, requests_all: int = 10,
        clients: int = 4) -> list[BenchResult]:
    """Requests/s and p50/p99 of one-symbol and all-symbol predictions; forward time per request."""
    import httpx
    import pandas as pd

    from bench.bench_inference import build_checkpoint
    from plusultra_core.data.synth_db import build_synthetic_database

    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        db = Path(tmp) / "synth.sqlite"
        build_synthetic_database(db, n_symbols=n_symbols, n_days=n_days, seed=11)
        measure(build_checkpoint, Path(tmp) / "supervised.pt", db, start_method="spawn")  # torch in a child
        ckpt = Path(tmp) / "supervised.pt"
        day = str(pd.bdate_range("2000-01-03", periods=n_days)[-1].date())
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "PLUSULTRA_SERVE_TOKEN"}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
        proc = subprocess.Popen([sys.executable, "-m", "plusultra_pipeline.cli", "serve", "--checkpoint", str(ckpt),
                                 "--db", str(db), "--port", str(port), "--log-level", "warning"],
                                cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(url, proc)
            with httpx.Client(base_url=url, timeout=300) as admin:
                from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

                with SQLiteMarketDataset(db) as ds:
                    names = ds.symbols()
                one = [{"date": day, "symbols": [names[i % len(names)]]} for i in range(requests_1)]
                every = [{"date": day} for _ in range(requests_all)]
                # one symbol on a day nobody asked about yet (the shared read's miss), then warm-up
                days = [str(d.date()) for d in pd.bdate_range("2000-01-03", periods=n_days)[-12:-2]]
                cold = [{"date": d, "symbols": [names[i]]} for i, d in enumerate(days)]
                _timed(url, [{"date": days[0], "symbols": [names[0]]}], 1)
                rows = []
                for label, bodies, n_clients in (("1 symbol, a new day each", cold[1:], 1),
                                                 ("1 symbol, same day", one, 1),
                                                 (f"1 symbol, same day, {clients} clients", one, clients),
                                                 (f"all {n_symbols} symbols", every, 1)):
                    s0, c0 = _forward(admin)
                    stats = _timed(url, bodies, n_clients)
                    s1, c1 = _forward(admin)
                    forward = (s1 - s0) / len(bodies)  # forward seconds per request (batches summed)
                    stats.update(forward_ms_per_request=round(forward * 1e3, 2),
                                 forward_calls=int(c1 - c0), latency_multiple_of_forward=round(stats["p50_s"] / forward, 1))
                    rows.append(BenchResult("serving", f"POST /predict, {label}: p50 latency", stats.pop("p50_s"),
                                            forward, "model forward per request (same run)", "s",
                                            goal="report", extra=stats))
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
        return rows


def main() -> None:
    parser = scale_parser(__doc__, days=700)
    args = parser.parse_args()
    print_results(run(args.symbols, args.days))


if __name__ == "__main__":
    main()
