"""Run events → the Open Responses response object and its streaming events.

Follows the Open Responses specification, version 2026-04-24. One `ResponseStream` per
response turns run events into spec events, numbered by `sequence_number` from 0:

    response.created → response.in_progress →
      per output item: response.output_item.added →
        message:   content_part.added → output_text.delta* → output_text.done → content_part.done
        reasoning: content_part.added → reasoning.delta* → reasoning.done → content_part.done
        function_call: function_call_arguments.delta* → function_call_arguments.done
      → response.output_item.done
    → exactly one of response.completed / response.incomplete / response.failed
      (a failure is an `error` event followed by `response.failed`)

Items never interleave: a new item closes the open one. Server-run (MCP) tool calls are
shown only when the request opts in with `include: ["agenthost:tool_calls"]`, as vendor
items of type `agenthost:tool_call`; sub-agent calls and handoffs likewise, as items of
type `agenthost:agent_call` (kind, agent, input, output, usage). Otherwise no
non-standard event is ever emitted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from agenthost import ids
from agenthost.events import (
    ReasoningDelta,
    RunEvent,
    RunFinished,
    ServerToolResult,
    ServerToolStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from agenthost.protocols.responses import wire

SPEC_VERSION = "2026-04-24"
VENDOR_TOOL_ITEM = "agenthost:tool_call"
VENDOR_AGENT_ITEM = "agenthost:agent_call"  # a sub-agent's run or a handoff (agent graphs)
VENDOR_ITEMS = frozenset({VENDOR_TOOL_ITEM, VENDOR_AGENT_ITEM})
GRAPH_SERVERS = {"agenthost:subagent": "subagent", "agenthost:handoff": "handoff"}
Event = dict[str, Any]


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_choice(choice: wire.ToolChoiceWire | None) -> Any:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    if isinstance(choice, wire.SpecificFunction):
        return {"type": "function", "name": choice.name}
    tools = [{"type": "function", "name": t.name} for t in choice.tools]
    return {"type": "allowed_tools", "tools": tools, "mode": choice.mode}


def _text(options: wire.TextOptions | None) -> dict[str, Any]:
    fmt = options.format if options else None
    text: dict[str, Any] = {"format": {"type": "text"}}
    if isinstance(fmt, wire.JSONObjectFormat):
        text["format"] = {"type": "json_object"}
    elif isinstance(fmt, wire.JSONSchemaFormat):
        # The spec's response-side JsonSchemaResponseFormat allows only null for `schema`.
        text["format"] = {
            "type": "json_schema",
            "name": fmt.name,
            "description": fmt.description,
            "schema": None,
            "strict": bool(fmt.strict),
        }
    if options is not None and options.verbosity is not None:
        text["verbosity"] = options.verbosity
    return text


def _tools(tools: list[wire.FunctionTool] | None) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.parameters,
            "strict": t.strict,
        }
        for t in tools or []
    ]


def _number(value: float | None, default: Any) -> float:
    picked = value if value is not None else default
    return float(picked) if isinstance(picked, int | float) else 0.0


def _sampling(body: wire.CreateResponseRequest, params: dict[str, Any]) -> dict[str, float]:
    """The sampling settings in effect: the request's, else the agent's, else defaults."""
    return {
        "top_p": _number(body.top_p, params.get("top_p", 1.0)),
        "presence_penalty": _number(body.presence_penalty, params.get("presence_penalty", 0)),
        "frequency_penalty": _number(body.frequency_penalty, params.get("frequency_penalty", 0)),
        "temperature": _number(body.temperature, params.get("temperature", 1.0)),
    }


def response_object(
    response_id: str,
    body: wire.CreateResponseRequest,
    agent_params: dict[str, Any],
    status: str = "in_progress",
    max_output_tokens: int | None = None,
) -> dict[str, Any]:
    """The full response object (all 31 fields of the spec) before any output;
    `max_output_tokens` is the effective cap (request, agent and provider applied)."""
    reasoning = body.reasoning
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": None,
        "status": status,
        "incomplete_details": None,
        "model": body.model or "",
        "previous_response_id": body.previous_response_id,
        "instructions": body.instructions,
        "output": [],
        "error": None,
        "tools": _tools(body.tools),
        "tool_choice": _tool_choice(body.tool_choice),
        "truncation": body.truncation or "disabled",
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "text": _text(body.text),
        **_sampling(body, agent_params),
        "top_logprobs": body.top_logprobs or 0,
        "reasoning": (
            {"effort": reasoning.effort, "summary": reasoning.summary} if reasoning else None
        ),
        "usage": None,
        "max_output_tokens": max_output_tokens or body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "store": body.store is not False,
        "background": bool(body.background),
        "service_tier": body.service_tier or "default",
        "metadata": dict(body.metadata or {}),
        "safety_identifier": body.safety_identifier,
        "prompt_cache_key": body.prompt_cache_key,
    }


@dataclass(slots=True)
class _OpenItem:
    """The output item being streamed: its index, wire object and accumulated text."""

    index: int
    item: dict[str, Any]
    parts: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.item["type"])


@dataclass(slots=True)
class ResponseStream:
    """Stream state of one response; each `on_*` hook returns the events it produced."""

    response: dict[str, Any]
    include_tool_calls: bool = False
    sequence: int = 0
    finished: bool = False
    _open: _OpenItem | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def _event(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self, type_: str) -> Event:
        return self._event(
            type_, response=dict(self.response, output=list(self.response["output"]))
        )

    def opening(self) -> list[Event]:
        """`response.created` then `response.in_progress`."""
        self.response["status"] = "in_progress"
        return [self.created(), self.in_progress()]

    def created(self) -> Event:
        """`response.created`: the response as it is now (`queued` in background)."""
        return self._snapshot("response.created")

    def in_progress(self) -> Event:
        self.response["status"] = "in_progress"
        return self._snapshot("response.in_progress")

    def on_event(self, event: RunEvent) -> list[Event]:
        if isinstance(event, TextDelta):
            return self.on_text(event.text)
        if isinstance(event, ReasoningDelta):
            return self.on_reasoning(event.text)
        if isinstance(event, ToolCallStart):
            return self.on_call_start(event)
        if isinstance(event, ToolCallDelta):
            return self.on_call_delta(event)
        if isinstance(event, ToolCallEnd):
            return self.on_call_end(event)
        if isinstance(event, ServerToolStart):
            return self._close("completed")
        if isinstance(event, ServerToolResult):
            return self.on_server_tool(event)
        if isinstance(event, RunFinished):
            return self.on_finished(event)
        return []  # StepFinished: usage arrives whole with RunFinished

    # --- items -------------------------------------------------------------------------

    def _add_item(self, item: dict[str, Any]) -> list[Event]:
        index = len(self.response["output"])
        self.response["output"].append(item)
        self._open = _OpenItem(index, item)
        return [self._event("response.output_item.added", output_index=index, item=dict(item))]

    def _part_event(self, type_: str, open_item: _OpenItem, part: dict[str, Any]) -> Event:
        return self._event(
            type_,
            item_id=open_item.item["id"],
            output_index=open_item.index,
            content_index=0,
            part=part,
        )

    def _open_content(self, kind: str) -> list[Event]:
        if self._open is not None and self._open.kind == kind:
            return []
        events = self._close("completed")
        if kind == "message":
            item = {
                "type": "message",
                "id": ids.prefixed("msg"),
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": []}
        else:
            item = {"type": "reasoning", "id": ids.prefixed("rs"), "summary": [], "content": []}
            part = {"type": "reasoning_text", "text": ""}
        events += self._add_item(item)
        assert self._open is not None
        events.append(self._part_event("response.content_part.added", self._open, part))
        return events

    def on_text(self, text: str) -> list[Event]:
        if not text:
            return []
        events = self._open_content("message")
        assert self._open is not None
        self._open.parts.append(text)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def on_reasoning(self, text: str) -> list[Event]:
        if not text:
            return []
        events = self._open_content("reasoning")
        assert self._open is not None
        self._open.parts.append(text)
        events.append(
            self._event(
                "response.reasoning.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                content_index=0,
                delta=text,
            )
        )
        return events

    def on_call_start(self, start: ToolCallStart) -> list[Event]:
        events = self._close("completed")
        item = {
            "type": "function_call",
            "id": ids.prefixed("fc"),
            "call_id": start.call_id,
            "name": start.name,
            "arguments": "",
            "status": "in_progress",
        }
        return events + self._add_item(item)

    def _is_open_call(self, call_id: str) -> bool:
        return (
            self._open is not None
            and self._open.kind == "function_call"
            and self._open.item["call_id"] == call_id
        )

    def on_call_delta(self, delta: ToolCallDelta) -> list[Event]:
        if not delta.arguments_delta or not self._is_open_call(delta.call_id):
            return []
        assert self._open is not None
        self._open.parts.append(delta.arguments_delta)
        return [
            self._event(
                "response.function_call_arguments.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                delta=delta.arguments_delta,
            )
        ]

    def on_call_end(self, end: ToolCallEnd) -> list[Event]:
        if not self._is_open_call(end.call_id):
            return []  # already closed when a later call started
        assert self._open is not None
        self._open.parts = [end.arguments]
        return self._close("completed")

    def on_server_tool(self, result: ServerToolResult) -> list[Event]:
        if not self.include_tool_calls:
            return []
        item = (
            _agent_item(result)
            if result.agent_id is not None
            else {
                "type": VENDOR_TOOL_ITEM,
                "id": ids.prefixed("tc"),
                "call_id": result.call_id,
                "server": result.server,
                "name": result.name,
                "arguments": result.arguments,
                "output": result.output,
                "status": "failed" if result.is_error else "completed",
            }
        )
        events = self._close("completed") + self._add_item(dict(item, status="in_progress"))
        self.response["output"][-1] = item
        self._open = None
        done = self._event(
            "response.output_item.done", output_index=len(self.response["output"]) - 1, item=item
        )
        return [*events, done]

    def _close(self, status: str) -> list[Event]:
        """Finish the open item with its `.done` events; `status` is the item's end state."""
        open_item, self._open = self._open, None
        if open_item is None:
            return []
        text = "".join(open_item.parts)
        item, where = (
            open_item.item,
            {"item_id": open_item.item["id"], "output_index": open_item.index},
        )
        events: list[Event] = []
        if open_item.kind == "function_call":
            item["arguments"] = text
            events.append(
                self._event("response.function_call_arguments.done", **where, arguments=text)
            )
        elif open_item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            item["content"] = [part]
            events.append(
                self._event(
                    "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
                )
            )
            events.append(self._part_event("response.content_part.done", open_item, part))
        else:
            part = {"type": "reasoning_text", "text": text}
            item["content"] = [part]
            events.append(
                self._event("response.reasoning.done", **where, content_index=0, text=text)
            )
            events.append(self._part_event("response.content_part.done", open_item, part))
        if open_item.kind != "reasoning":
            item["status"] = status
        events.append(
            self._event("response.output_item.done", output_index=open_item.index, item=dict(item))
        )
        return events

    # --- endings -----------------------------------------------------------------------

    def on_finished(self, done: RunFinished) -> list[Event]:
        complete = done.status == "completed"
        events = self._close("completed" if complete else "incomplete")
        self.response["usage"] = usage_object(done.usage)
        self.finished = True
        if complete:
            self.response["status"] = "completed"
            self.response["completed_at"] = int(time.time())
            return [*events, self._snapshot("response.completed")]
        if done.status == "failed":
            self.response["status"] = "failed"
            self.response["error"] = {"code": "run_failed", "message": "The run failed."}
            return [*events, self._snapshot("response.failed")]
        self.response["status"] = "incomplete"
        reason = done.incomplete_reason or (
            "cancelled" if done.status == "cancelled" else "max_output_tokens"
        )
        self.response["incomplete_details"] = {"reason": reason}
        return [*events, self._snapshot("response.incomplete")]

    def on_error(self, error: dict[str, Any], usage: Usage | None = None) -> list[Event]:
        """A failure after the stream began: `error`, then `response.failed`.

        `error` is the API error body's inner object (type, code, message, param).
        """
        events = self._close("incomplete")
        self.finished = True
        self.response["status"] = "failed"
        self.response["error"] = {
            "code": error.get("code") or "server_error",
            "message": error["message"],
        }
        self.response["usage"] = usage_object(usage or Usage())
        payload = {k: error.get(k) for k in ("type", "code", "message", "param")}
        events.append(self._event("error", error=payload))
        return [*events, self._snapshot("response.failed")]

    def abandon(self, reason: str, usage: Usage | None = None) -> None:
        """The client left or the run was cancelled: end as `incomplete`, emitting nothing."""
        self._close("incomplete")
        self.finished = True
        cancelled = reason == "cancelled"
        self.response["status"] = "cancelled" if cancelled else "incomplete"
        self.response["incomplete_details"] = None if cancelled else {"reason": reason}
        self.response["usage"] = usage_object(usage or Usage())


TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})


def closing_event(response: dict[str, Any], sequence: int) -> Event:
    """The terminal event for an ended response that emitted none (it was cancelled, or
    its worker was lost): a follower of its stream learns the end and the final object."""
    kind = {"completed": "response.completed", "failed": "response.failed"}
    type_ = kind.get(str(response.get("status")), "response.incomplete")
    return {"type": type_, "sequence_number": sequence, "response": response}


def _agent_item(result: ServerToolResult) -> dict[str, Any]:
    """A sub-agent call or handoff as a vendor item: which agent, what in, what out."""
    try:
        arguments = json.loads(result.arguments or "{}")
    except ValueError:
        arguments = {}
    given = arguments.get("input") if isinstance(arguments, dict) else None
    return {
        "type": VENDOR_AGENT_ITEM,
        "id": ids.prefixed("ac"),
        "call_id": result.call_id,
        "kind": GRAPH_SERVERS.get(result.server, result.server),
        "agent": result.agent_id,
        "name": result.name,
        "input": given if isinstance(given, str) else None,
        "output": result.output,
        "usage": usage_object(result.usage) if result.usage is not None else None,
        "status": "failed" if result.is_error else "completed",
    }
