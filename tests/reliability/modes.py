"""One call through either interface, streamed or not, reduced to what fault tests
compare: the HTTP status, the error (as an HTTP body or as the stream's error signal),
the text the caller received and how long it took."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.reliability.support import API_ERROR_KEYS, assert_error_shape, auth

MODES = ["chat-json", "chat-sse", "responses-json", "responses-sse"]


@dataclass
class Outcome:
    """What the caller saw."""

    status: int
    http_error: dict[str, Any] | None = None  # the inner `error` of a non-200 reply
    stream_error: dict[str, Any] | None = None  # the error signal inside a 200 stream
    text: str = ""
    final_status: str | None = None  # Open Responses: the last response status seen
    ended_properly: bool = False  # `[DONE]` (chat) or a terminal event (responses)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def error(self) -> dict[str, Any] | None:
        return self.http_error or self.stream_error


def call(api: str, key: str, mode: str, agent: str, prompt: str, timeout: float = 30) -> Outcome:
    started = time.monotonic()
    interface, kind = mode.split("-")
    body: dict[str, Any]
    if interface == "chat":
        body = {"model": agent, "messages": [{"role": "user", "content": prompt}]}
        url = f"{api}/chat/completions"
    else:
        body = {"model": agent, "input": prompt}
        url = f"{api}/responses"
    if kind == "sse":
        body["stream"] = True
        if interface == "chat":
            body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", url, json=body, headers=auth(key), timeout=timeout) as reply:
        if reply.status_code != 200:
            reply.read()
            out = Outcome(reply.status_code, assert_error_shape(reply, reply.status_code))
        elif kind == "json":
            reply.read()
            out = _json_outcome(interface, reply.json())
        else:
            out = _chat_stream(reply) if interface == "chat" else _responses_stream(reply)
    out.seconds = time.monotonic() - started
    return out


def _json_outcome(interface: str, data: dict[str, Any]) -> Outcome:
    if interface == "chat":
        return Outcome(
            200, text=data["choices"][0]["message"]["content"] or "", ended_properly=True
        )
    text = "".join(
        part.get("text", "")
        for item in data["output"]
        if item.get("type") == "message"
        for part in item.get("content", [])
    )
    return Outcome(200, text=text, final_status=data["status"], ended_properly=True)


def _chat_stream(reply: httpx.Response) -> Outcome:
    out = Outcome(200)
    for line in reply.iter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            out.ended_properly = True
            continue
        chunk = orjson.loads(data)
        if "error" in chunk:
            assert set(chunk["error"]) == API_ERROR_KEYS, chunk
            out.stream_error = chunk["error"]
            continue
        for choice in chunk.get("choices", []):
            out.text += choice["delta"].get("content") or ""
    return out


def _responses_stream(reply: httpx.Response) -> Outcome:
    out = Outcome(200)
    for line in reply.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = orjson.loads(line[6:])
        out.events.append(event["type"])
        if event["type"] == "response.output_text.delta":
            out.text += event["delta"]
        elif event["type"] == "error":
            out.stream_error = event["error"]
        if event["type"] in ("response.completed", "response.failed", "response.incomplete"):
            out.final_status = event["response"]["status"]
            out.ended_properly = True
    return out
