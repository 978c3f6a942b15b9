"""Server-run (MCP) tool calls: hidden from callers unless `include` asks for them."""

from __future__ import annotations

from tests.responses.conftest import Api

CALL = '!call math__add {"a": 2, "b": 3}'


def test_server_tools_stay_invisible_by_default(own: Api) -> None:
    order = own.stream({"model": own.tenant.scripted_agent, "input": CALL})
    final = order.finish()
    assert [i["type"] for i in final["output"]] == ["message"]
    assert final["output"][0]["content"][0]["text"] == "result: 5"
    assert all(e.get("item", {}).get("type") != "agenthost:tool_call" for e in order.events)


def test_include_shows_server_tool_calls_as_vendor_items(own: Api) -> None:
    body = {"model": own.tenant.scripted_agent, "input": CALL, "include": ["agenthost:tool_calls"]}
    order = own.stream(body, vendor=True)
    kinds = [i["type"] for i in order.finish()["output"]]
    assert kinds == ["agenthost:tool_call", "message"]
    call = order.finish()["output"][0]
    assert call["name"] == "math__add" and call["output"] == "5" and call["status"] == "completed"
    stored = own.get(f"/{order.finish()['id']}").json()
    assert stored["output"][0]["type"] == "agenthost:tool_call"
