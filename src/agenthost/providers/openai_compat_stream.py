"""Chat Completions SSE lines (or an error body) → model events, and usage → our `Usage`.

Lines are parsed with orjson into plain dicts (no wire models per chunk). Usage values
pass as the upstream reported them: the run's budget validates and clamps them.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from agenthost.errors import ProviderError
from agenthost.events import (
    Finish,
    FinishReason,
    ModelEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}
_MAX_DETAIL = 500

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Call:
    index: int
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamState:
    """What one upstream stream has said so far; `feed_line` appends events to `out`."""

    calls: dict[Any, _Call] = field(default_factory=dict)  # by the upstream's index
    last_key: Any = 0
    open_calls: list[_Call] = field(default_factory=list)
    call_count: int = 0
    finish: FinishReason | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    done: bool = False

    def feed_lines(self, lines: list[bytes], out: list[ModelEvent]) -> ProviderError | None:
        """Feed lines until `[DONE]`; a failure is returned, with the events before it."""
        for line in lines:
            try:
                self.feed_line(line, out)
            except ProviderError as exc:
                return exc
            if self.done:
                break
        return None

    def feed_line(self, line: bytes, out: list[ModelEvent]) -> None:
        # Comments (`: keep-alive`), `event:`/`id:` fields and blank lines carry nothing.
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        if not payload:
            return
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"upstream sent a non-JSON event: {payload[:80]!r}") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"upstream sent a non-object event: {payload[:80]!r}")
        self.feed(data, out)

    def feed(self, data: dict[str, Any], out: list[ModelEvent]) -> None:
        error = data.get("error")
        if error is not None:
            raise ProviderError(f"upstream failed mid-stream: {error_detail(error)}")
        choices = data.get("choices")
        if choices:
            self._choice(choices[0], out)
        usage = data.get("usage")
        if isinstance(usage, dict) and usage:
            # Some servers repeat cumulative usage on every chunk: keep the last.
            self.usage = usage
        elif usage:
            log.warning("upstream defect: %s sent usage that is not an object", self.model)
            self.model = data.get("model") or self.model
        elif self.model is None:
            self.model = data.get("model")

    def _choice(self, choice: dict[str, Any], out: list[ModelEvent]) -> None:
        delta = choice.get("delta")
        if delta:
            # vLLM sends both fields with the same text; OpenRouter only `reasoning`.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content and isinstance(content, str):
                out.append(TextDelta(content))
            refusal = delta.get("refusal")
            if refusal and isinstance(refusal, str):
                out.append(TextDelta(refusal))
            tool_calls = delta.get("tool_calls")
            if tool_calls and self.finish is None:
                for item in tool_calls:
                    self._tool_delta(item, out)
        reason = choice.get("finish_reason")
        if reason and self.finish is None:
            self.finish = _FINISH.get(reason, "stop")
            self.close_calls(out)

    def _tool_delta(self, item: dict[str, Any], out: list[ModelEvent]) -> None:
        key = item.get("index")
        if key is None:  # a few servers omit the index: fall back to the id, then the last call
            key = item.get("id") or self.last_key
        self.last_key = key
        function = item.get("function") or {}
        call = self.calls.get(key)
        if call is None:
            # Our index is the call's position in this message, whatever the upstream's was.
            call_id = item.get("id") or f"call_{secrets.token_urlsafe(18)}"
            call = _Call(self.call_count, call_id, function.get("name") or "")
            self.call_count += 1
            self.calls[key] = call
            self.open_calls.append(call)
            out.append(ToolCallStart(call.index, call.call_id, call.name))
        elif not call.name and function.get("name"):
            call.name = function["name"]
        arguments = function.get("arguments")
        if arguments:
            call.parts.append(arguments)
            out.append(ToolCallDelta(call.index, call.call_id, arguments))

    def close_calls(self, out: list[ModelEvent]) -> None:
        for call in self.open_calls:
            out.append(ToolCallEnd(call.index, call.call_id, call.name, "".join(call.parts)))
        self.open_calls.clear()

    def end(self, out: list[ModelEvent]) -> None:
        """The stream ended properly: close calls, report usage, finish exactly once."""
        self.close_calls(out)
        if self.usage is not None:
            out.append(UsageReport(_usage(self.usage), self.model))
        reason = self.finish or "stop"
        # Some servers (older Ollama) say "stop" after tool calls; callers key on tool_calls.
        if reason == "stop" and self.call_count:
            reason = "tool_calls"
        out.append(Finish(reason))


def _as_reported(raw: dict[str, Any], key: str) -> Any:
    """The value as the upstream sent it, None when missing: the run's budget validates
    usage (a missing or unreadable count is charged at its estimate)."""
    return raw.get(key)


def _usage(raw: dict[str, Any]) -> Usage:
    # Values pass as they came: the run's budget validates and clamps them.
    prompt = raw.get("prompt_tokens_details")
    completion = raw.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = completion if isinstance(completion, dict) else {}
    return Usage(
        input_tokens=_as_reported(raw, "prompt_tokens"),
        output_tokens=_as_reported(raw, "completion_tokens"),
        cache_read_tokens=prompt.get("cached_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
    )


def error_detail(error: Any) -> str:
    """The message inside an upstream error (body bytes or parsed), whatever its shape."""
    if isinstance(error, bytes):
        try:
            error = orjson.loads(raw := error)
        except orjson.JSONDecodeError:  # a proxy's HTML or plain text
            return raw[:_MAX_DETAIL].decode("utf-8", "replace").strip()
    while isinstance(error, dict):  # {"error": {"message": …}}, {"detail": …}, {"message": …}
        inner = error.get("error") or error.get("message") or error.get("detail")
        error = inner if inner is not None else orjson.dumps(error).decode()
    return str(error)[:_MAX_DETAIL]


def joined(events: list[ModelEvent]) -> list[ModelEvent]:
    """Neighbouring text (or reasoning) deltas of one read as one delta: the tokens that
    arrived together are relayed as one chunk, encoded and parsed once."""
    if len(events) < 2:
        return events
    out: list[ModelEvent] = []
    run: list[str] = []  # the texts of a run of deltas of one kind
    kind: type[TextDelta] | type[ReasoningDelta] | None = None
    for event in [*events, None]:
        if kind is not None and type(event) is not kind:
            out.append(kind("".join(run)))
            run, kind = [], None
        if isinstance(event, TextDelta | ReasoningDelta):
            kind = type(event)
            run.append(event.text)
        elif event is not None:
            out.append(event)
    return out
