"""A tool result must answer a tool call: an orphan `function_call_output` (Open
Responses, HTTP and WebSocket) or `tool` message (Chat Completions) is a 400 naming it,
as OpenAI answers, never forwarded upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import Tenant
from tests.responses.conftest import Api
from tests.responses.test_websocket import error_of, open_socket, turn
from tests.support.server import Server


def orphan(call_id: str = "call_nobody_made") -> dict[str, str]:
    return {"type": "function_call_output", "call_id": call_id, "output": "42"}


def test_an_orphan_function_call_output_is_400_naming_its_call_id(api: Api) -> None:
    agent = api.tenant.scripted_agent
    with pytest.raises(openai.BadRequestError) as refused:
        api.sdk().responses.create(
            model=agent,
            input=[{"role": "user", "content": "hi"}, orphan()],  # type: ignore[list-item]
        )
    assert refused.value.body["param"] == "input[1].call_id"  # type: ignore[index]
    answered = [
        {"role": "user", "content": "what is 6 x 7?"},
        {"type": "function_call", "call_id": "call_1", "name": "calc", "arguments": "{}"},
        orphan("call_1"),
    ]
    assert api.sdk().responses.create(model=agent, input=answered).status == "completed"  # type: ignore[arg-type]


def test_an_output_may_answer_a_call_of_the_stored_chain(api: Api) -> None:
    agent = api.tenant.fake_agent
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = api.sdk().responses.create(
        model=agent,
        input="!call lookup {}",
        tools=tools,  # type: ignore[arg-type]
    )
    call = next(item for item in first.output if item.type == "function_call")
    again = api.sdk().responses.create(
        model=agent,
        previous_response_id=first.id,
        input=[orphan(call.call_id)],  # type: ignore[list-item]
        tools=tools,  # type: ignore[arg-type]
    )
    assert again.status == "completed"
    with pytest.raises(openai.BadRequestError) as refused:
        api.sdk().responses.create(
            model=agent,
            previous_response_id=first.id,
            input=[orphan()],  # type: ignore[list-item]
        )
    assert refused.value.body["param"] == "input[0].call_id"  # type: ignore[index]


def test_over_websocket_the_turn_fails_and_evicts_what_it_continued(
    server: Server, alice: Tenant
) -> None:
    with open_socket(server, alice.key) as socket:
        first = turn(socket, {"model": alice.scripted_agent, "input": "hi", "store": False})
        first_id = first.finish()["id"]
        event = error_of(
            socket,
            {"model": alice.scripted_agent, "previous_response_id": first_id, "input": [orphan()]},
        )
        assert event["status"] == 400 and event["error"]["param"] == "input[0].call_id"
        again = error_of(
            socket, {"model": alice.scripted_agent, "previous_response_id": first_id, "input": "x"}
        )
        assert again["error"]["code"] == "previous_response_not_found"


def test_an_orphan_tool_message_is_400_naming_its_tool_call_id(api: Api) -> None:
    client = api.sdk()
    agent = api.tenant.scripted_agent
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=agent,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_nobody_made", "content": "42"},
            ],
        )
    assert refused.value.body["param"] == "messages[1].tool_call_id"  # type: ignore[index]
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    answered = client.chat.completions.create(
        model=agent,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
    )
    assert answered.choices[0].finish_reason == "stop"
    assert json.dumps(answered.model_dump())
