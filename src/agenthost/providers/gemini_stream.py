"""Gemini `streamGenerateContent?alt=sse` chunks → model events, and `usageMetadata` → our
`Usage`.

Each SSE `data:` line is a whole `GenerateContentResponse`. Text parts are text deltas,
parts with `thought: true` are reasoning (thought summaries), and a `functionCall` part
arrives complete, so it becomes start, one argument delta and end at once. The chunk
carrying `finishReason` ends the answer; there is no `[DONE]`.

Usage: `promptTokenCount` already includes `cachedContentTokenCount` (Google: "the total
effective prompt size"), which is our convention too, so input is the prompt count (plus
`toolUsePromptTokenCount`) and the cached part is `cache_read_tokens`, a subset billed at
its own rate. Thinking is billed as output: output = `candidatesTokenCount` +
`thoughtsTokenCount`, with the thoughts as `reasoning_tokens`. Counts of zero are left out
of Google's JSON, so a missing count is 0; a whole missing `usageMetadata` leaves the
call to the budget's estimate.

An error object sent as a frame is classed by its `code` like an HTTP error, so an
overloaded or failing upstream that says so before any output is retried.
"""

from __future__ import annotations

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
from agenthost.providers.upstream_errors import redact, status_error

FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
# The model tried a call the API could not parse: nothing usable came back.
_FAILED_CALLS = ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL")
_MAX_DETAIL = 500


@dataclass(slots=True)
class GeminiStream:
    """What one Gemini stream has said so far; `feed_line` returns the events it produces.
    `provider` and `api_key` name the upstream in errors and mask its key in them."""

    provider: str = "google"
    api_key: str | None = None
    call_count: int = 0
    signatures: dict[str, str] = field(default_factory=dict)  # call id -> thoughtSignature
    usage_metadata: dict[str, Any] | None = None
    model: str | None = None
    finish: FinishReason | None = None

    def feed_line(self, line: bytes) -> list[ModelEvent]:
        # Blank lines and other SSE fields carry nothing.
        if not line.startswith(b"data:"):
            return []
        payload = line[5:].strip()
        if not payload:
            return []
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"upstream sent a non-JSON event: {payload[:80]!r}") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"upstream sent a non-object event: {payload[:80]!r}")
        return self.feed(data)

    def feed(self, data: dict[str, Any]) -> list[ModelEvent]:
        if "error" in data:
            raise self._failure(data)
        self.model = data.get("modelVersion") or self.model
        usage = data.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage_metadata = usage  # cumulative: the last one counts
        out: list[ModelEvent] = []
        candidates = data.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            self._candidate(candidates[0], out)
        elif _blocked(data):
            self.finish = "content_filter"  # the prompt itself was refused
        return out

    def _failure(self, data: dict[str, Any]) -> ProviderError:
        detail = redact(error_detail(data), self.api_key)
        error = data["error"]
        code = error.get("code") if isinstance(error, dict) else None
        kind = type(status_error(self.provider, code, "")) if isinstance(code, int) else None
        message = f"upstream {self.provider} failed mid-stream: {detail}"
        return kind(message, status=code) if kind else ProviderError(message)

    def _candidate(self, candidate: dict[str, Any], out: list[ModelEvent]) -> None:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and self.finish is None:
            if reason in _FAILED_CALLS:
                detail = candidate.get("finishMessage") or reason
                raise ProviderError(f"upstream model made an unusable tool call: {detail}")
            self.finish = FINISH_REASONS.get(reason, "stop")

    def _part(self, part: dict[str, Any], out: list[ModelEvent]) -> None:
        call = part.get("functionCall")
        if isinstance(call, dict):
            self._call(call, part.get("thoughtSignature"), out)
            return
        text = part.get("text")
        if isinstance(text, str) and text:
            out.append(ReasoningDelta(text) if part.get("thought") else TextDelta(text))

    def _call(self, call: dict[str, Any], signature: Any, out: list[ModelEvent]) -> None:
        call_id = call.get("id") or f"call_{secrets.token_urlsafe(18)}"
        name = str(call.get("name") or "")
        args = call.get("args")
        arguments = orjson.dumps(args if isinstance(args, dict) else {}).decode()
        index = self.call_count
        self.call_count += 1
        if isinstance(signature, str) and signature:
            self.signatures[call_id] = signature
        out.append(ToolCallStart(index, call_id, name))
        out.append(ToolCallDelta(index, call_id, arguments))
        out.append(ToolCallEnd(index, call_id, name, arguments))

    def usage(self) -> Usage | None:
        raw = self.usage_metadata
        if raw is None:
            return None
        thoughts = raw.get("thoughtsTokenCount", 0)
        return Usage(
            input_tokens=_sum(
                raw.get("promptTokenCount", 0), raw.get("toolUsePromptTokenCount", 0)
            ),
            output_tokens=_sum(raw.get("candidatesTokenCount", 0), thoughts),
            cache_read_tokens=raw.get("cachedContentTokenCount", 0),
            reasoning_tokens=thoughts,
        )

    def end(self) -> list[ModelEvent]:
        """The stream ended with a finish reason: report usage, finish exactly once."""
        out: list[ModelEvent] = []
        usage = self.usage()
        if usage is not None:
            out.append(UsageReport(usage, self.model))
        reason = self.finish or "stop"
        # Gemini says STOP after function calls; callers key on tool_calls.
        if reason == "stop" and self.call_count:
            reason = "tool_calls"
        out.append(Finish(reason))
        return out


def _blocked(data: dict[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _sum(first: Any, second: Any) -> Any:
    """Both counts added; a count that is not an integer is passed on as it came, so the
    run's budget charges its estimate instead."""
    for value in (first, second):
        if not isinstance(value, int) or isinstance(value, bool):
            return value
    return first + second


def error_detail(error: Any) -> str:
    """The message of Google's error (`{"error": {"code", "message", "status"}}`), from
    the body bytes or parsed JSON, whatever its shape."""
    if isinstance(error, bytes):
        try:
            error = orjson.loads(raw := error)
        except orjson.JSONDecodeError:  # a proxy's HTML or plain text
            return raw[:_MAX_DETAIL].decode("utf-8", "replace").strip()
    if isinstance(error, list) and error:  # the JSON-array form of a stream
        error = error[0]
    inner = error.get("error") if isinstance(error, dict) else None
    if isinstance(inner, dict):
        status, message = inner.get("status"), inner.get("message")
        text = f"{status}: {message}" if status and message else str(message or inner)
        return text[:_MAX_DETAIL]
    return str(error)[:_MAX_DETAIL]


def key_rejected(content: bytes) -> bool:
    """Whether a 400 is Google's answer to a bad API key (reason API_KEY_INVALID)."""
    try:
        error = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    if isinstance(error, list) and error:
        error = error[0]
    inner = error.get("error") if isinstance(error, dict) else None
    details = inner.get("details") if isinstance(inner, dict) else None
    return any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID"
        for d in (details if isinstance(details, list) else [])
    )
