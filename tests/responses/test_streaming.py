"""Streamed responses: spec event types, order, sequence numbers, failures, disconnects."""

from __future__ import annotations

import sqlite3
import time

import httpx

from tests.responses.conftest import Api, marker
from tests.responses.schema import check_response


def test_text_stream_follows_the_lifecycle(api: Api) -> None:
    order = api.stream({"model": api.tenant.scripted_agent, "input": "one two three"})
    assert order.types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert order.types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert order.types.count("response.output_text.delta") == 4
    final = order.finish()
    assert final["output"][0]["content"][0]["text"] == "echo: one two three"


def test_reasoning_streams_as_reasoning_events(api: Api) -> None:
    order = api.stream(
        {"model": api.tenant.fake_agent, "input": "!reasoning step by step\n!text done"}
    )
    assert "response.reasoning.delta" in order.types and "response.reasoning.done" in order.types
    assert not any("reasoning_text" in t for t in order.types)
    kinds = [i["type"] for i in order.finish()["output"]]
    assert kinds == ["reasoning", "message"]


def test_caller_tool_call_streams_argument_deltas_and_done(api: Api) -> None:
    order = api.stream(
        {
            "model": api.tenant.scripted_agent,
            "input": '!call lookup {"city": "Paris"}',
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        }
    )
    assert order.types.count("response.function_call_arguments.delta") == 2
    assert order.types.count("response.function_call_arguments.done") == 1
    (call,) = order.finish()["output"]
    assert call["type"] == "function_call" and call["id"].startswith("fc_")
    assert call["name"] == "lookup" and call["arguments"] == '{"city": "Paris"}'
    assert call["status"] == "completed"


def test_failure_mid_stream_is_error_then_failed(api: Api) -> None:
    order = api.stream({"model": api.tenant.scripted_agent, "input": "!fail mid\na b c d e f"})
    assert order.types[-2:] == ["error", "response.failed"]
    final = order.finish()
    assert final["status"] == "failed" and final["error"]["code"]
    assert api.get(f"/{final['id']}").json()["status"] == "failed"


def test_failure_before_first_token_is_not_a_stream(api: Api) -> None:
    tag = marker()
    text = f"!fail before\n{tag}"
    body = {"model": api.tenant.scripted_agent, "input": text, "stream": True}
    reply = api.post(body)
    assert reply.status_code == 503
    assert reply.headers["content-type"].startswith("application/json")
    # The row written while the upstream was asked for its first token is gone again.
    with sqlite3.connect(api.server.folder / "agenthost.db") as db:
        (rows,) = db.execute(
            "SELECT count(*) FROM responses WHERE input_items LIKE ?", (f"%{tag}%",)
        ).fetchone()
    assert rows == 0


def test_sdk_stream_and_retrieve(api: Api) -> None:
    client = api.sdk()
    with client.responses.stream(model=api.tenant.scripted_agent, input="sdk stream") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: sdk stream"
    again = client.responses.retrieve(final.id)
    assert again.output_text == final.output_text and again.status == "completed"


def test_client_disconnect_leaves_the_stored_response_incomplete(api: Api) -> None:
    body = {"model": api.tenant.fake_agent, "input": "!stall 5000\nsome words", "stream": True}
    with httpx.stream("POST", api.url, json=body, headers=api.headers, timeout=30) as reply:
        response_id = ""
        for line in reply.iter_lines():
            if line.startswith("data:") and '"response.created"' in line:
                response_id = httpx.Response(200, content=line[6:]).json()["response"]["id"]
            if line.startswith("data:") and '"response.output_text.delta"' in line:
                break  # leave while the upstream stalls after its first delta
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stored = api.get(f"/{response_id}").json()
        if stored["status"] != "in_progress":
            break
        time.sleep(0.1)
    check_response(stored)
    assert stored["status"] == "incomplete"
    assert stored["incomplete_details"] == {"reason": "interrupted"}
