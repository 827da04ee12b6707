"""Fixtures of the deployment tests: a real PostgreSQL server on loopback for the session."""

from __future__ import annotations

import pytest

from tests.deploy import postgres_server


@pytest.fixture(scope="session")
def postgres():
    """A started `postgres_server.PostgresServer`; the test fails (never skips) when it cannot start."""
    try:
        server = postgres_server.start()
    except postgres_server.PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    yield server
    postgres_server.stop(server)
