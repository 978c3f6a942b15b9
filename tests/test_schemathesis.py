"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis):
no input makes a 500, and every answer matches what the document promises (status,
content type, schema, the one error shape) on every route."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import Tenant
from tests.support.server import Server


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.api}/openapi.json")


def assert_error_shape(response: Any) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body


def fuzz(operation: Any, server: Server, key: str, agent: str | None) -> None:
    """Up to 25 generated cases for one operation (hypothesis, derandomized)."""
    headers = {"Authorization": f"Bearer {key}"}

    @given(operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        bodies = [case.body]
        if agent and isinstance(case.body, dict) and "model" in case.body:
            bodies.append({**case.body, "model": agent})  # also reach a real agent
        for body in bodies:
            case.body = body
            response = case.call(base_url=server.url, headers=headers, timeout=30)
            # The body schemas are the standards' whole requests on purpose; values agents
            # do not support (n > 1, logprobs…) are a documented 400, not a broken schema.
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance], headers=headers
            )
            assert_error_shape(response)

    check()


def test_api_never_fails_and_keeps_its_promises(
    api_schema: Any, server: Server, alice: Tenant
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/api/agents/v1/chat/completions", "/api/agents/v1/responses"} <= paths
    for operation in operations:
        fuzz(operation, server, alice.key, alice.scripted_agent)
