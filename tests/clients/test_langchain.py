"""LangChain's `ChatOpenAI` against agenthost, on both APIs: a tool round trip driven by
the caller (bind_tools, then a ToolMessage back), streaming, and Responses continuation."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tests.clients.conftest import WEATHER_CALL, UpstreamLog, marker, tool_messages, weather
from tests.conftest import Tenant
from tests.support.server import Server

get_weather = tool("get_weather")(weather)


def chat_model(server: Server, tenant: Tenant, responses: bool) -> ChatOpenAI:
    return ChatOpenAI(
        model=tenant.fake_agent,
        base_url=server.api,
        api_key=SecretStr(tenant.key),
        max_retries=0,
        use_responses_api=responses,
    )


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
def test_tool_round_trip(
    responses: bool, server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    llm = chat_model(server, alice, responses).bind_tools([get_weather])
    word = marker()
    history: list = [HumanMessage(f"{word}\n{WEATHER_CALL}")]
    asked = llm.invoke(history)
    assert isinstance(asked, AIMessage)
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    history += [asked, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    answer = llm.invoke(history)
    assert answer.text == "tool said: sunny in Paris"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
    sent = upstream_log.bodies_with(word)
    assert len(sent) == 2 and tool_messages(sent[1]) == ["sunny in Paris"]


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
def test_streaming(responses: bool, server: Server, alice: Tenant) -> None:
    llm = chat_model(server, alice, responses)
    pieces = list(llm.stream("!text streamed through langchain"))
    assert len(pieces) > 1
    assert "".join(p.text for p in pieces) == "streamed through langchain"


def test_responses_continuation_by_previous_response_id(
    server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    llm = chat_model(server, alice, responses=True)
    first_word, second_word = marker(), marker()
    first = llm.invoke(f"{first_word}\n!text first answer")
    response_id = first.response_metadata["id"]
    assert response_id.startswith("resp_")
    second = llm.invoke(f"{second_word}\n!text second answer", previous_response_id=response_id)
    assert second.text == "second answer"
    (chained,) = upstream_log.bodies_with(second_word)
    assert first_word in str(chained["messages"]) and "first answer" in str(chained["messages"])
