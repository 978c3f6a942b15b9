"""OpenAPI pieces for routes that parse their own bodies (for speed and exact errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agenthost.http.errors import ERROR_RESPONSES


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every `#/$defs/X` reference replaced by X (the wire models are not
    recursive), so the OpenAPI document needs no extra components."""
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _inline_refs(definitions[ref.removeprefix("#/$defs/")], definitions)
    return {k: _inline_refs(v, definitions) for k, v in node.items() if k != "$defs"}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the required JSON body."""
    schema = model.model_json_schema()
    inlined = _inline_refs(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}


def json_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """A JSON 200 plus every error status in the one error shape."""
    ok = {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {200: ok, **ERROR_RESPONSES}


def stream_or_json_responses(
    description: str, links: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    ok: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
    if links:
        ok["links"] = links
    return {200: ok, **ERROR_RESPONSES}


def id_links(parameter: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links passing the created object's `id` on to `operation_ids` (they let
    clients and stateful API testers follow a create to its read, list and delete)."""
    return {
        op: {"operationId": op, "parameters": {parameter: "$response.body#/id"}}
        for op in operation_ids
    }
