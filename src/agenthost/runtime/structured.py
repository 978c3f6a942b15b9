"""Structured output (`response_format` json_schema): enforce it or refuse it.

A provider whose upstream cannot enforce a JSON Schema (`supports_json_schema()` False)
is never asked for one: the request fails with 400 before any upstream call, so no
unvalidated text is ever returned as if it matched. When the upstream does enforce it
and the caller asked for `strict`, the final text is checked here too, as a backstop.
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agenthost.conversation import ResponseFormat
from agenthost.errors import InvalidRequest, ProviderError
from agenthost.providers.base import Provider


def check_supported(provider: Provider, fmt: ResponseFormat | None) -> None:
    """Raise InvalidRequest when `fmt` asks for a schema this provider cannot enforce."""
    if fmt is None or fmt.type != "json_schema":
        return
    if not provider.supports_json_schema():
        raise InvalidRequest(
            "This agent's model cannot enforce a JSON Schema; use response_format "
            "'json_object' or 'text'.",
            code="unsupported_response_format",
            param="response_format",
        )
    if fmt.schema is not None:
        try:
            Draft202012Validator.check_schema(fmt.schema)
        except SchemaError as exc:
            raise InvalidRequest(
                f"response_format schema is not a valid JSON Schema: {exc.message}",
                code="invalid_json_schema",
                param="response_format",
            ) from exc


def check_output(fmt: ResponseFormat | None, text: str) -> None:
    """For a strict json_schema format, raise ProviderError unless `text` matches it."""
    if fmt is None or fmt.type != "json_schema" or not fmt.strict or fmt.schema is None:
        return
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProviderError(
            "The model's output is not valid JSON for the requested schema.",
            code="invalid_structured_output",
        ) from exc
    error = next(iter(Draft202012Validator(fmt.schema).iter_errors(value)), None)
    if error is not None:
        raise ProviderError(
            f"The model's output does not match the requested schema: {error.message}",
            code="invalid_structured_output",
        )
