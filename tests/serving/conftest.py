"""Real servers for the serving tests: uvicorn on a free loopback port, in a thread of the test
process, talked to over HTTP with httpx.

``served_store``      a store the graph itself wrote (demo database from 2014, one cutoff, one
                      seed, inference days 2018-01-02..05): its checkpoint and its stored frames.
``tiny_checkpoint``   (tests/conftest.py) a tiny OHLCV-only checkpoint on the small synthetic database.
``running``           ``running(source, **settings) -> context manager yielding (base_url, app)``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

CUTOFF = "2018-01-01"
DAYS = ("2018-01-02", "2018-01-05")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, port: int | None = None):
    """Run ``app`` with uvicorn on 127.0.0.1 until the block ends; yield its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def running():
    from plusultra_pipeline.serving.app import build_app
    from plusultra_pipeline.serving.settings import ServeSettings

    @contextlib.contextmanager
    def _running(source, database=None, **limits):
        app = build_app(source, ServeSettings(**limits), database=database)
        with serve_in_thread(app) as url:
            yield url, app

    return _running


@pytest.fixture(scope="session")
def served_store(tmp_path_factory):
    """``{"store": Path, "db": Path}`` after the graph materialised history, one cutoff and four days."""
    from dagster import instance_for_test

    from plusultra_core.data.demo_db import build_demo_database
    from plusultra_pipeline.assets.features import lookback_periods
    from plusultra_pipeline.definitions import build_definitions
    from plusultra_pipeline.runner import keys_between, materialize_graph, partition_keys
    from tests.pipeline.conftest import tiny_graph_settings

    tmp = tmp_path_factory.mktemp("served")
    db = tmp / "demo.sqlite"
    build_demo_database(db)
    # history from 2014 only: enough for a 2018 cutoff, and the fixture stays ~30 s
    settings = tiny_graph_settings(db, tmp, (CUTOFF, CUTOFF), DAYS, (0,), history_start="2014")
    defs = build_definitions(settings)
    with instance_for_test() as instance:
        materialize_graph(instance, defs, settings, lookback_periods(settings),
                          keys_between(partition_keys(defs, "supervised_checkpoint"), CUTOFF, CUTOFF),
                          keys_between(partition_keys(defs, "inference_frames"), *DAYS), say=lambda _: None)
    return {"store": settings.store_path, "db": db}
