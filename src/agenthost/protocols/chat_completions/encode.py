"""Run events → Chat Completions chunks and responses (OpenAI API 2.3.0).

Streamed tool calls: the first delta of a call carries index, id, type and name; later
deltas carry the same index and argument fragments only. Server-run tools never appear.
`system_fingerprint` is left out: the spec types it as a string, so `null` would break it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agenthost.events import (
    ReasoningDelta,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def finish_reason(done: RunFinished) -> str:
    return (
        "length"
        if done.status == "incomplete" and done.finish_reason != "content_filter"
        else done.finish_reason
    )


@dataclass(slots=True)
class ChunkEncoder:
    """Turns one run's events into chunk payloads; one instance per streamed response."""

    id: str
    model: str
    include_usage: bool
    created: int = field(default_factory=lambda: int(time.time()))
    _role_sent: bool = False
    _indexes: dict[str, int] = field(default_factory=dict)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def first(self) -> dict[str, Any]:
        """The opening chunk: the role and empty content, sent before the model answers."""
        return self._chunk({"content": "", "refusal": None})

    def encode(self, event: RunEvent) -> list[dict[str, Any]]:
        if isinstance(event, TextDelta):
            return [self._chunk({"content": event.text})] if event.text else []
        if isinstance(event, ReasoningDelta):
            return [self._chunk({"reasoning_content": event.text})] if event.text else []
        if isinstance(event, ToolCallStart):
            index = self._indexes.setdefault(event.call_id, len(self._indexes))
            call = {
                "index": index,
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if isinstance(event, ToolCallDelta):
            if not event.arguments_delta:
                return []
            call = {
                "index": self._indexes[event.call_id],
                "function": {"arguments": event.arguments_delta},
            }
            return [self._chunk({"tool_calls": [call]})]
        if isinstance(event, RunFinished):
            return self._finish(event)
        return []  # ToolCallEnd, server tools and steps carry nothing for chat clients

    def _finish(self, done: RunFinished) -> list[dict[str, Any]]:
        chunks = [self._chunk({}, finish_reason(done))]
        if self.include_usage:
            chunks.append(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage_body(done.usage),
                }
            )
        return chunks


@dataclass(slots=True)
class CompletionBuilder:
    """Collects a whole run into one non-streamed `chat.completion` object."""

    id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: RunEvent) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, ToolCallEnd):
            self.tool_calls.append(
                {
                    "id": event.call_id,
                    "type": "function",
                    "function": {"name": event.name, "arguments": event.arguments},
                }
            )

    def build(self, done: RunFinished) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.text) if self.text or not self.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(done),
                }
            ],
            "usage": usage_body(done.usage),
        }
