"""In-process checks of the pure parts: encoder hooks, compaction sealing, the server secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthost.errors import InvalidRequest
from agenthost.events import (
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
from agenthost.protocols.responses.compaction import CompactionSealer
from agenthost.protocols.responses.encode import ResponseStream, response_object
from agenthost.server_secret import SECRET_FILE, server_secret
from agenthost.settings import Settings
from tests.responses.schema import EventOrder


def _stream(include: bool) -> ResponseStream:
    body = wire.CreateResponseRequest.model_validate({"model": "agent_x", "input": "hi"})
    return ResponseStream(response_object("resp_1", body, {}), include_tool_calls=include)


def _run(stream: ResponseStream, vendor: bool) -> EventOrder:
    order = EventOrder(vendor=vendor)
    events = [
        TextDelta("looking "),
        ServerToolStart("call_a", "files", "read", "{}"),
        ServerToolResult("call_a", "files", "read", "{}", "contents", False),
        ToolCallStart(0, "call_b", "first"),
        ToolCallDelta(0, "call_b", '{"a":'),
        ToolCallStart(1, "call_c", "second"),  # starts before the first call's end
        ToolCallDelta(1, "call_c", "{}"),
        ToolCallEnd(0, "call_b", "first", '{"a":'),
        ToolCallEnd(1, "call_c", "second", "{}"),
        RunFinished("completed", "tool_calls", Usage(3, 4)),
    ]
    for event in stream.opening():
        order.feed(event)
    for run_event in events:
        for event in stream.on_event(run_event):
            order.feed(event)
    return order


def test_server_tool_calls_are_hidden_unless_asked_for() -> None:
    hidden = _run(_stream(False), vendor=False).finish()
    assert [i["type"] for i in hidden["output"]] == ["message", "function_call", "function_call"]
    shown = _run(_stream(True), vendor=True).finish()
    kinds = [i["type"] for i in shown["output"]]
    assert kinds == ["message", "agenthost:tool_call", "function_call", "function_call"]
    assert shown["output"][1]["output"] == "contents"


def test_sealed_items_open_only_for_their_owner() -> None:
    sealer = CompactionSealer(b"k" * 32)
    token = sealer.seal([{"type": "message", "role": "user", "content": "hi"}], "usr_a")
    assert sealer.open(token, "usr_a", "p")[0]["content"] == "hi"
    with pytest.raises(InvalidRequest):
        sealer.open(token, "usr_b", "p")
    with pytest.raises(InvalidRequest):
        CompactionSealer(b"other" * 8).open(token, "usr_a", "p")


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///:memory:")
    first = server_secret(settings)
    assert len(first) >= 32 and (tmp_path / SECRET_FILE).exists()
    assert server_secret(settings) == first
    configured = settings.model_copy(update={"secret_key": None})
    assert server_secret(configured) == first
