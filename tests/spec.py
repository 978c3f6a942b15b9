"""OpenAI's OpenAPI document as JSON Schema validators for our responses and chunks.

The document still carries OpenAPI-3.0 `nullable: true` in places; a strict
Draft 2020-12 validator would reject `null` there, so those are rewritten to
`anyOf [<schema>, {"type": "null"}]` before anything is validated.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAI_SPEC = Path("/work/shared/spec/openai-2.3.0.openapi.json")
_DOCUMENT_URI = "urn:openai-spec"


def without_nullable(node: Any) -> Any:
    """A copy of `node` where every `nullable: true` schema also admits `null`."""
    if isinstance(node, list):
        return [without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: without_nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _document() -> dict[str, Any]:
    spec: dict[str, Any] = orjson.loads(OPENAI_SPEC.read_bytes())
    return {"components": without_nullable(spec["components"])}


def schema_names() -> set[str]:
    return set(_document()["components"]["schemas"])


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = _document()["components"]["schemas"][name]
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A strict Draft 2020-12 validator for `#/components/schemas/<name>`."""
    resource = Resource.from_contents(_document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    root = {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{name}"}
    return Draft202012Validator(root, registry=registry, format_checker=FormatChecker())


def violations(name: str, instance: Any) -> list[str]:
    """Human-readable schema violations of `instance` against component `name`."""
    found = validator(name).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def assert_valid(name: str, instance: Any) -> None:
    problems = violations(name, instance)
    assert not problems, f"{name} violations: {problems[:5]}"


def request_properties(name: str = "CreateChatCompletionRequest") -> set[str]:
    """Every property a request schema accepts, following `allOf` and `$ref`."""

    def collect(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            return collect(component(schema["$ref"].rsplit("/", 1)[-1]))
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found |= collect(part)
        return found

    return collect(component(name))
