"""Property-based fuzz of the served OpenAPI schema (schemathesis): whatever the generated request,
the real server answers without a 5xx, and its answers match the schema it publishes."""

from __future__ import annotations

import time

import pytest

schemathesis = pytest.importorskip("schemathesis")  # a dev dependency (third-party)

from hypothesis import HealthCheck, given, settings  # noqa: E402

from plusultra_pipeline.serving.holder import CheckpointSource  # noqa: E402

EXAMPLES = 60          # per operation (6 operations): ~10 s here, bounded below by BUDGET_SECONDS
BUDGET_SECONDS = 60


def test_fuzzed_requests_never_get_a_server_error(tiny_checkpoint, small_synth_db_path, running):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    started = time.monotonic()
    with running(CheckpointSource(tiny_checkpoint), database=small_synth_db_path, max_days=31) as (url, _):
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
            "GET /health", "GET /config", "POST /predict", "POST /reload", "GET /metrics"}
        seen = []
        for operation in operations:
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def fuzz(case):
                response = case.call_and_validate(base_url=url, checks=[not_a_server_error, status_code_conformance,
                                                                         response_schema_conformance])
                seen.append(response.status_code)

            fuzz()
    from collections import Counter
    print(f"fuzz: {len(seen)} requests, statuses {dict(Counter(seen))}")
    assert 200 in seen and 422 in seen  # it reached the model and the validation, not only one of them
    assert time.monotonic() - started < BUDGET_SECONDS
