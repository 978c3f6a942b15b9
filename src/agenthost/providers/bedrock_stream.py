"""Bedrock Converse answers → model events: the ConverseStream events (one JSON payload
per event-stream message, named by its `:event-type` header) and the whole JSON answer
of Converse, and Bedrock's `usage` → our `Usage`.

Stream: `contentBlockStart` opens a `toolUse` block (id and name); `contentBlockDelta`
carries `text`, `toolUse.input` (a piece of the arguments' JSON text) or
`reasoningContent.text`; `contentBlockStop` closes a call; `messageStop` has the
`stopReason`; `metadata` (last) has the usage. An exception message (`:message-type`
exception) is classed by its `:exception-type` like the HTTP error of that name:
throttling, unavailable, internal and model-stream errors are retryable before any
output, a validation error is not.

Usage: Bedrock's `inputTokens` leaves out the prompt read from or written to the cache
(`cacheReadInputTokens`, `cacheWriteInputTokens`), while our `input_tokens` includes
them, so input is the sum of the three and the cache counts are subsets billed at their
own rates. Converse reports no separate reasoning count: thinking is in `outputTokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from agenthost.errors import ProviderError, UpstreamUnavailable
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
from agenthost.providers.eventstream import EventMessage
from agenthost.providers.upstream_errors import MAX_DETAIL, redact

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Exceptions AWS documents as worth retrying (throttled, overloaded, a transient fault).
RETRYABLE = {
    "throttlingexception": 429,
    "serviceunavailableexception": 503,
    "internalserverexception": 500,
    "modelstreamerrorexception": 424,
    "modelnotreadyexception": 429,
}


@dataclass(slots=True)
class _Call:
    index: int
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BedrockStream:
    """What one Bedrock answer has said so far. `provider` and `secrets` name the
    upstream in errors and mask its secret key (and session token) in them."""

    provider: str = "bedrock"
    secrets: tuple[str, ...] = ()
    call_count: int = 0
    calls: dict[int, _Call] = field(default_factory=dict)  # by contentBlockIndex
    raw_usage: dict[str, Any] | None = None
    finish: FinishReason | None = None
    stopped: bool = False
    reasoning: list[str] = field(default_factory=list)
    signature: str | None = None  # of the reasoning block, to hand back with the calls
    call_ids: list[str] = field(default_factory=list)

    def signed_reasoning(self) -> tuple[str, str] | None:
        """(text, signature) of this answer's reasoning, when it is signed."""
        return ("".join(self.reasoning), self.signature) if self.signature else None

    def feed_message(self, message: EventMessage) -> list[ModelEvent]:
        try:
            data = orjson.loads(message.payload or b"{}")
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                f"upstream {self.provider} sent a non-JSON event: {message.payload[:80]!r}"
            ) from exc
        if message.message_type != "event":
            raise self.failure(message.exception_type or message.message_type, data)
        if not isinstance(data, dict):
            raise ProviderError(f"upstream {self.provider} sent a non-object event")
        return self.feed(message.event_type, data)

    def failure(self, kind: str, data: Any) -> ProviderError:
        detail = data.get("message") or data.get("Message") if isinstance(data, dict) else None
        text = f"{kind}: {detail or data}"
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = redact(text, None)
        message = f"upstream {self.provider} failed mid-stream: {text}"
        status = RETRYABLE.get(kind.lower())
        if status is not None:
            return UpstreamUnavailable(message, status=status)
        return ProviderError(message, status=400 if "validation" in kind.lower() else None)

    def feed(self, kind: str, data: dict[str, Any]) -> list[ModelEvent]:
        out: list[ModelEvent] = []
        if kind == "contentBlockStart":
            start = data.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(use, dict):
                self._open_call(data.get("contentBlockIndex"), use, out)
        elif kind == "contentBlockDelta":
            self._delta(data.get("contentBlockIndex"), data.get("delta"), out)
        elif kind == "contentBlockStop":
            self._close_call(data.get("contentBlockIndex"), out)
        elif kind == "messageStop":
            self.stopped = True
            reason = data.get("stopReason")
            self.finish = STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
        elif kind == "metadata":
            usage = data.get("usage")
            if isinstance(usage, dict):
                self.raw_usage = usage
        return out  # messageStart and unknown events carry nothing for the caller

    def _open_call(self, index: Any, use: dict[str, Any], out: list[ModelEvent]) -> None:
        call = _Call(self.call_count, str(use.get("toolUseId") or ""), str(use.get("name") or ""))
        self.call_count += 1
        self.calls[index] = call
        self.call_ids.append(call.call_id)
        out.append(ToolCallStart(call.index, call.call_id, call.name))

    def _delta(self, index: Any, delta: Any, out: list[ModelEvent]) -> None:
        if not isinstance(delta, dict):
            return
        text = delta.get("text")
        if isinstance(text, str) and text:
            out.append(TextDelta(text))
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            thought = reasoning.get("text")
            if isinstance(thought, str) and thought:
                self.reasoning.append(thought)
                out.append(ReasoningDelta(thought))
            signature = reasoning.get("signature")
            if isinstance(signature, str) and signature:
                self.signature = signature
        use = delta.get("toolUse")
        call = self.calls.get(index)
        if isinstance(use, dict) and call is not None:
            piece = use.get("input")
            if isinstance(piece, str) and piece:
                call.arguments.append(piece)
                out.append(ToolCallDelta(call.index, call.call_id, piece))

    def _close_call(self, index: Any, out: list[ModelEvent]) -> None:
        call = self.calls.pop(index, None)
        if call is not None:
            arguments = "".join(call.arguments) or "{}"
            out.append(ToolCallEnd(call.index, call.call_id, call.name, arguments))

    def whole(self, data: dict[str, Any]) -> list[ModelEvent]:
        """The events of a Converse (non-streamed) answer."""
        output = data.get("output")
        message = output.get("message") if isinstance(output, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        out: list[ModelEvent] = []
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict):
                self._whole_block(block, out)
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.raw_usage = usage
        reason = data.get("stopReason")
        if not isinstance(reason, str):
            raise ProviderError(f"upstream {self.provider} answered without a stopReason")
        self.stopped, self.finish = True, STOP_REASONS.get(reason, "stop")
        return out

    def _whole_block(self, block: dict[str, Any], out: list[ModelEvent]) -> None:
        text = block.get("text")
        if isinstance(text, str) and text:
            out.append(TextDelta(text))
        reasoning = block.get("reasoningContent")
        inner = reasoning.get("reasoningText") if isinstance(reasoning, dict) else None
        thought = inner.get("text") if isinstance(inner, dict) else None
        if isinstance(thought, str) and thought:
            self.reasoning.append(thought)
            out.append(ReasoningDelta(thought))
        signature = inner.get("signature") if isinstance(inner, dict) else None
        if isinstance(signature, str) and signature:
            self.signature = signature
        use = block.get("toolUse")
        if isinstance(use, dict):
            index, call_id = self.call_count, str(use.get("toolUseId") or "")
            name = str(use.get("name") or "")
            self.call_count += 1
            self.call_ids.append(call_id)
            arguments = orjson.dumps(use.get("input") or {}).decode()
            out.append(ToolCallStart(index, call_id, name))
            out.append(ToolCallDelta(index, call_id, arguments))
            out.append(ToolCallEnd(index, call_id, name, arguments))

    def usage(self) -> Usage | None:
        raw = self.raw_usage
        if raw is None:
            return None
        read, write = raw.get("cacheReadInputTokens", 0), raw.get("cacheWriteInputTokens", 0)
        return Usage(
            input_tokens=_sum(raw.get("inputTokens", 0), read, write),
            output_tokens=raw.get("outputTokens", 0),
            cache_read_tokens=read,
            cache_write_tokens=write,
        )

    def end(self, model: str | None = None) -> list[ModelEvent]:
        """The answer ended with a stop reason: report usage, finish exactly once."""
        out: list[ModelEvent] = []
        usage = self.usage()
        if usage is not None:
            out.append(UsageReport(usage, model))
        reason = self.finish or "stop"
        if reason == "stop" and self.call_count:
            reason = "tool_calls"
        out.append(Finish(reason))
        return out


def _sum(*counts: Any) -> Any:
    """The counts added; a count that is not an integer is passed on as it came, so the
    run's budget charges its estimate instead."""
    for value in counts:
        if not isinstance(value, int) or isinstance(value, bool):
            return value
    return sum(counts)


# Bedrock's error kind by status, when the x-amzn-ErrorType header is not at hand (the
# streamed open reads status and body only). 403 has several kinds; the message says which.
_KIND_BY_STATUS = {
    400: "ValidationException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def response_kind(status: int) -> str | None:
    return _KIND_BY_STATUS.get(status)


def error_detail(content: bytes, error_type: str | None = None) -> str:
    """Bedrock's error (`{"message": ...}` with the kind in `x-amzn-ErrorType`)."""
    kind = (error_type or "").split(":", 1)[0]
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:  # a proxy's HTML or plain text
        text = content[:MAX_DETAIL].decode("utf-8", "replace").strip()
    else:
        text = str(
            (data.get("message") or data.get("Message") or data) if isinstance(data, dict) else data
        )
    return (f"{kind}: {text}" if kind else text)[:MAX_DETAIL]
