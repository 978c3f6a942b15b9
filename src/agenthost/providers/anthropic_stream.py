"""Anthropic streaming events → model events, and Anthropic usage → our `Usage`.

Anthropic reports `input_tokens` without the cached part; ours includes it, so
`input_tokens = input_tokens + cache_creation_input_tokens + cache_read_input_tokens`,
with `cache_write_tokens` and `cache_read_tokens` as subsets that billing prices at
their own rates (never twice). Thinking tokens are not reported separately by the API,
so `reasoning_tokens` stays 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@dataclass(slots=True)
class _Call:
    index: int
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AnthropicStream:
    """What one Messages stream has said so far; `feed` returns the events it produces."""

    calls: dict[int, _Call] = field(default_factory=dict)  # by content block index
    thinking: dict[int, dict[str, Any]] = field(default_factory=dict)
    input_tokens: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output_tokens: int = 0
    model: str | None = None
    stop_reason: str | None = None
    stopped: bool = False

    def feed(self, event: Any) -> list[ModelEvent]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self.model = event.message.model
            self._usage(event.message.usage)
        elif kind == "content_block_start":
            return self._block_start(event.index, event.content_block)
        elif kind == "content_block_delta":
            return self._delta(event.index, event.delta)
        elif kind == "content_block_stop":
            return self._block_stop(event.index)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._usage(event.usage)
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise ProviderError(f"upstream failed mid-stream: {getattr(event, 'error', '')}")
        return []

    def _usage(self, usage: Any) -> None:
        # message_delta repeats cumulative counts; a missing field keeps the earlier one.
        for ours, theirs in (
            ("input_tokens", "input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("output_tokens", "output_tokens"),
        ):
            value = getattr(usage, theirs, None)
            if isinstance(value, int):
                setattr(self, ours, value)

    def _block_start(self, index: int, block: Any) -> list[ModelEvent]:
        if block.type == "tool_use":
            call = _Call(len(self.calls), block.id, block.name)
            self.calls[index] = call
            return [ToolCallStart(call.index, call.call_id, call.name)]
        if block.type == "thinking":
            self.thinking[index] = {"type": "thinking", "thinking": "", "signature": ""}
        elif block.type == "redacted_thinking":
            self.thinking[index] = {"type": "redacted_thinking", "data": block.data}
        elif block.type == "text" and block.text:
            return [TextDelta(block.text)]
        return []

    def _delta(self, index: int, delta: Any) -> list[ModelEvent]:
        if delta.type == "text_delta":
            return [TextDelta(delta.text)] if delta.text else []
        if delta.type == "thinking_delta":
            self.thinking[index]["thinking"] += delta.thinking
            return [ReasoningDelta(delta.thinking)] if delta.thinking else []
        if delta.type == "signature_delta":
            self.thinking[index]["signature"] += delta.signature
        elif delta.type == "input_json_delta":
            call = self.calls[index]
            if delta.partial_json:
                call.parts.append(delta.partial_json)
                return [ToolCallDelta(call.index, call.call_id, delta.partial_json)]
        return []

    def _block_stop(self, index: int) -> list[ModelEvent]:
        call = self.calls.get(index)
        if call is None:
            return []
        arguments = "".join(call.parts) or "{}"
        return [ToolCallEnd(call.index, call.call_id, call.name, arguments)]

    def thinking_blocks(self) -> list[dict[str, Any]]:
        return [self.thinking[i] for i in sorted(self.thinking)]

    def call_ids(self) -> list[str]:
        return [c.call_id for c in self.calls.values()]

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + self.cache_write + self.cache_read,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
        )

    def end(self) -> list[ModelEvent]:
        reason = STOP_REASONS.get(self.stop_reason or "", "stop")
        if reason == "stop" and self.calls:
            reason = "tool_calls"
        return [UsageReport(self.usage(), self.model), Finish(reason)]
