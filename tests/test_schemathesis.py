"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis):
no input makes a 500, and every answer matches what the document promises.

The chat and models routes are held to every check; the rest of the document (routes
owned elsewhere) to "never a server error" and the error shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import Tenant
from tests.support.server import Server

FULLY_CHECKED = re.compile(r"^/api/agents/v1/(chat/completions|models)")


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.api}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def assert_error_shape(response: Any) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_never_fails_and_keeps_its_promises(case: Any, alice: Tenant, server: Server) -> None:
    headers = {"Authorization": f"Bearer {alice.key}"}
    response = case.call(base_url=server.url, headers=headers, timeout=30)
    if FULLY_CHECKED.match(case.operation.path):
        case.validate_response(response, headers=headers)
    else:
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
    assert_error_shape(response)
