"""Conformance checks for Open Responses payloads (spec 2026-04-24).

Every object is validated twice: with JSON Schema against the spec file's components, and
with the `openresponses-types` pydantic models generated from the same spec. `EventOrder`
is a state machine over a whole stream: lifecycle, item and content-part states, sequence
numbers, and that the final response agrees with the streamed items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import openresponses_types.types as ort
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path("/work/shared/spec/open-responses-2026-04-24.openapi.json")
if not SPEC_PATH.exists():  # the repository keeps no copy; fall back to a sibling checkout
    SPEC_PATH = Path(__file__).resolve().parents[3] / "shared/spec" / SPEC_PATH.name
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
_REGISTRY = Registry().with_resource(
    "urn:openresponses", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)
VENDOR_ITEM = "agenthost:tool_call"
ITEM_MODELS = {
    "message": "Message",
    "function_call": "FunctionCall",
    "function_call_output": "FunctionCallOutput",
    "reasoning": "ReasoningBody",
    "compaction": "CompactionBody",
}
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def _stream_components() -> dict[str, str]:
    content = SPEC["paths"]["/responses"]["post"]["responses"]["200"]["content"]
    refs = [r["$ref"].split("/")[-1] for r in content["text/event-stream"]["schema"]["oneOf"]]
    schemas = SPEC["components"]["schemas"]
    return {schemas[name]["properties"]["type"]["enum"][0]: name for name in refs}


EVENT_COMPONENTS = _stream_components()
assert len(EVENT_COMPONENTS) == 24


@cache
def _validator(component: str) -> Draft202012Validator:
    ref = {"$ref": f"urn:openresponses#/components/schemas/{component}"}
    return Draft202012Validator(ref, registry=_REGISTRY)


def check_component(component: str, value: Any) -> None:
    """JSON Schema from the spec file, then the generated pydantic model of the same name."""
    errors = sorted(_validator(component).iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{component}: {errors[0].message} at {list(errors[0].path)}"
    if component == "ItemField":
        component = ITEM_MODELS[value["type"]]
    getattr(ort, component).model_validate(value)


def check_response(value: dict[str, Any]) -> None:
    check_component("ResponseResource", value)
    required = SPEC["components"]["schemas"]["ResponseResource"]["required"]
    # The spec's fields, plus at most our one vendor field (the schema allows more
    # properties): which upstream served the response, `{"served_by": "PROVIDER:MODEL"}`,
    # and which agent answered last, `"answered_by": "agent_…"`.
    extra = set(value) - set(required)
    assert set(required) <= set(value) and extra <= {"agenthost"}, "the spec fields, and ours"
    if "agenthost" in value:
        served = value["agenthost"]
        assert set(served) <= {"served_by", "answered_by"}, served
        assert ":" in served.get("served_by", ":"), served
        assert served.get("answered_by", "agent_").startswith("agent_"), served
    assert value["tools"] is not None
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs"):
        assert value[name] is not None, name
    for name in ("truncation", "text", "service_tier", "store", "background"):
        assert value[name] is not None, name
    if value["usage"] is not None:
        assert "cached_tokens" in value["usage"]["input_tokens_details"]
        assert "reasoning_tokens" in value["usage"]["output_tokens_details"]


def check_event(event: dict[str, Any], vendor: bool = False) -> None:
    kind = event["type"]
    item = event.get("item") or {}
    if vendor and item.get("type") == VENDOR_ITEM:
        return  # opted-in vendor items are outside the standard union by design
    assert kind in EVENT_COMPONENTS, f"non-standard event type {kind}"
    if vendor and "response" in event:  # check the standard part of an opted-in response
        output = [i for i in event["response"]["output"] if i["type"] != VENDOR_ITEM]
        event = dict(event, response=dict(event["response"], output=output))
    check_component(EVENT_COMPONENTS[kind], event)
    if "response" in event:
        check_response(event["response"])


@dataclass
class _Item:
    index: int
    item: dict[str, Any]
    parts: dict[int, list[str]] = field(default_factory=dict)
    part_open: int | None = None
    text_done: bool = False
    arguments: list[str] = field(default_factory=list)
    arguments_done: str | None = None


@dataclass
class EventOrder:
    """Feeds on every event of one stream and asserts the spec's lifecycle."""

    vendor: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    response_id: str | None = None
    open: _Item | None = None
    done_items: list[dict[str, Any]] = field(default_factory=list)
    terminal: dict[str, Any] | None = None

    def feed(self, event: dict[str, Any]) -> None:
        check_event(event, self.vendor)
        assert self.terminal is None, f"{event['type']} after the terminal event"
        assert event["sequence_number"] == len(self.events), "sequence numbers count from 0"
        self.events.append(event)
        kind = event["type"]
        if len(self.events) == 1:
            assert kind in ("response.created", "response.queued")
        elif len(self.events) == 2:
            assert kind == "response.in_progress"
        else:
            assert kind not in ("response.created", "response.queued", "response.in_progress")
        if "response" in event:
            self._lifecycle(event)
        elif kind == "error":
            assert self.open is None, "error while an item is open"
        else:
            assert self.response_id is not None
            if self.events[-2]["type"] == "error":
                raise AssertionError("error must be followed by response.failed")
            self._item_event(kind, event)

    def _lifecycle(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if self.response_id is None:
            self.response_id = response["id"]
        assert response["id"] == self.response_id
        if event["type"] in TERMINAL:
            assert self.open is None, "terminal event while an item is open"
            if event["type"] == "response.failed":
                assert response["error"] is not None
            else:
                assert len(self.events) < 2 or self.events[-2]["type"] != "error"
            assert response["status"] == event["type"].split(".")[1]
            assert [i["id"] for i in response["output"]] == [i["id"] for i in self.done_items]
            assert response["output"] == self.done_items
            assert response["usage"] is not None
            self.terminal = event

    def _item_event(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "response.output_item.added":
            assert self.open is None, "items must not interleave"
            assert event["output_index"] == len(self.done_items)
            self.open = _Item(event["output_index"], event["item"])
            return
        current = self.open
        assert current is not None, f"{kind} outside an item"
        assert event["output_index"] == current.index
        if kind == "response.output_item.done":
            self._item_done(current, event["item"])
            return
        assert event["item_id"] == current.item["id"]
        if kind.startswith("response.function_call_arguments"):
            assert current.item["type"] == "function_call"
            assert current.arguments_done is None
            if kind.endswith(".delta"):
                current.arguments.append(event["delta"])
            else:
                assert event["arguments"] == "".join(current.arguments)
                current.arguments_done = event["arguments"]
            return
        self._content_event(kind, event, current)

    def _content_event(self, kind: str, event: dict[str, Any], current: _Item) -> None:
        index = event["content_index"]
        expected = {"message": "output_text", "reasoning": "reasoning"}[current.item["type"]]
        if kind == "response.content_part.added":
            assert current.part_open is None and index == len(current.parts)
            current.parts[index], current.part_open, current.text_done = [], index, False
        elif kind == "response.content_part.done":
            assert current.part_open == index and current.text_done
            assert event["part"]["text"] == "".join(current.parts[index])
            current.part_open = None
        elif kind == f"response.{expected}.delta":
            assert current.part_open == index and not current.text_done
            current.parts[index].append(event["delta"])
        elif kind == f"response.{expected}.done":
            assert current.part_open == index and not current.text_done
            assert event["text"] == "".join(current.parts[index])
            current.text_done = True
        else:
            raise AssertionError(f"{kind} inside a {current.item['type']} item")

    def _item_done(self, current: _Item, item: dict[str, Any]) -> None:
        assert item["id"] == current.item["id"] and item["type"] == current.item["type"]
        if item["type"] == "function_call":
            assert current.arguments_done == item["arguments"]
        elif item["type"] in ("message", "reasoning"):
            assert current.part_open is None
            texts = ["".join(current.parts[i]) for i in sorted(current.parts)]
            assert [p.get("text") for p in item["content"]] == texts
        self.done_items.append(item)
        self.open = None

    def finish(self) -> dict[str, Any]:
        """The terminal event's response, after checking the stream really ended."""
        assert self.terminal is not None, "the stream ended without a terminal event"
        return dict(self.terminal["response"])

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]
