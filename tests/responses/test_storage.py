"""Stored responses: continuation, retrieval, deletion, input items, isolation, tool round trips."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.responses.conftest import Api, marker
from tests.responses.schema import check_component, check_response

TOOLS = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]


def test_function_call_round_trip_with_previous_response_id(api: Api) -> None:
    agent = api.tenant.scripted_agent
    first = api.create({"model": agent, "input": '!call weather {"city": "Oslo"}', "tools": TOOLS})
    (call,) = first["output"]
    assert call["type"] == "function_call" and first["status"] == "completed"
    second = api.create(
        {
            "model": agent,
            "previous_response_id": first["id"],
            "tools": TOOLS,
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": "-3C"}
            ],
        }
    )
    assert second["output"][0]["content"][0]["text"] == "result: -3C"
    assert second["previous_response_id"] == first["id"]


def test_function_call_round_trip_with_full_input(api: Api) -> None:
    reply = api.sdk().responses.create(
        model=api.tenant.scripted_agent,
        store=False,
        tools=TOOLS,  # type: ignore[arg-type]
        input=[
            {"role": "user", "content": "!call weather {}"},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
    )
    assert reply.output_text == "result: sunny"


def test_multi_turn_sends_the_whole_conversation(api: Api) -> None:
    agent, tag = api.tenant.fake_agent, marker()
    first = api.create({"model": agent, "input": "!text Hi Ann", "instructions": "OLD RULES"})
    second = api.create({"model": agent, "input": "second", "previous_response_id": first["id"]})
    api.create({"model": agent, "input": tag, "previous_response_id": second["id"]})
    sent = api.upstream_request(tag)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert "Hi Ann" in str(sent[1]["content"]) and "OLD RULES" not in str(sent)


def test_sdk_previous_response_id(api: Api) -> None:
    client = api.sdk()
    first = client.responses.create(model=api.tenant.scripted_agent, input="first")
    second = client.responses.create(
        model=api.tenant.scripted_agent, input="second", previous_response_id=first.id
    )
    assert second.output_text == "echo: second"
    assert client.responses.retrieve(second.id).previous_response_id == first.id


def test_retrieve_delete_and_not_found(api: Api) -> None:
    created = api.create({"model": api.tenant.scripted_agent, "input": "keep me"})
    fetched = api.get(f"/{created['id']}").json()
    check_response(fetched)
    assert fetched == created
    deleted = api.sdk().responses.delete(created["id"])
    assert deleted is None or getattr(deleted, "deleted", True)
    missing = api.get(f"/{created['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "response_not_found"


def test_store_false_keeps_nothing(api: Api) -> None:
    created = api.create({"model": api.tenant.scripted_agent, "input": "x", "store": False})
    assert created["store"] is False
    assert api.get(f"/{created['id']}").status_code == 404
    reply = api.post(
        {"model": api.tenant.scripted_agent, "input": "y", "previous_response_id": created["id"]}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "previous_response_not_found"


def test_input_items_pagination(api: Api) -> None:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": f"line {n}", "id": f"msg_in{n}"} for n in range(5)
    ]
    created = api.create({"model": api.tenant.scripted_agent, "input": items})
    path = f"/{created['id']}/input_items"
    page = api.get(path, order="asc", limit=2).json()
    assert [i["id"] for i in page["data"]] == ["msg_in0", "msg_in1"] and page["has_more"]
    for item in page["data"]:
        check_component("ItemField", item)
    page = api.get(path, order="asc", limit=2, after=page["last_id"]).json()
    assert [i["id"] for i in page["data"]] == ["msg_in2", "msg_in3"]
    page = api.get(path, order="asc", after="msg_in3").json()
    assert [i["id"] for i in page["data"]] == ["msg_in4"] and not page["has_more"]
    newest = api.get(path, limit=1).json()
    assert newest["first_id"] == "msg_in4" and newest["object"] == "list"
    before = api.get(path, order="asc", before="msg_in2").json()
    assert [i["id"] for i in before["data"]] == ["msg_in0", "msg_in1"]
    assert api.get(path, limit=0).status_code == 400


def test_item_reference_resolves_stored_items(api: Api) -> None:
    first = api.create({"model": api.tenant.fake_agent, "input": "!text remembered words"})
    tag = marker()
    api.create(
        {
            "model": api.tenant.fake_agent,
            "input": [
                {"type": "item_reference", "id": first["output"][0]["id"]},
                {"role": "user", "content": tag},
            ],
        }
    )
    sent = api.upstream_request(tag)["messages"]
    assert sent[0]["role"] == "assistant" and "remembered words" in str(sent[0]["content"])
    reply = api.post({"model": api.tenant.fake_agent, "input": [{"id": "msg_nope"}]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].id"


def test_owner_isolation(api: Api, bob_api: Api) -> None:
    created = api.create({"model": api.tenant.scripted_agent, "input": "alice only"})
    rid = created["id"]
    for reply in (
        bob_api.get(f"/{rid}"),
        bob_api.get(f"/{rid}/input_items"),
        bob_api.post({}, f"/{rid}/cancel"),
    ):
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        bob_api.sdk().responses.delete(rid)
    reply = bob_api.post(
        {"model": bob_api.tenant.scripted_agent, "input": "x", "previous_response_id": rid}
    )
    assert reply.json()["error"]["code"] == "previous_response_not_found"
    assert api.get(f"/{rid}").status_code == 200
