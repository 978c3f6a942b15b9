"""The OpenAI Agents SDK's three models against agenthost: Responses over HTTP, Chat
Completions, and Responses over WebSocket, each with a function tool round trip and,
where the model keeps state server-side, a second run chained by previous_response_id."""

from __future__ import annotations

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    OpenAIResponsesWSModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model
from openai import AsyncOpenAI

from tests.clients.conftest import WEATHER_CALL, UpstreamLog, marker, tool_messages, weather
from tests.conftest import Tenant
from tests.support.server import Server

set_tracing_disabled(True)  # the SDK would otherwise export traces to api.openai.com
get_weather = function_tool(weather, name_override="get_weather")


def build(kind: str, client: AsyncOpenAI, agent_id: str) -> Model:
    if kind == "chat":
        return OpenAIChatCompletionsModel(model=agent_id, openai_client=client)
    if kind == "responses":
        return OpenAIResponsesModel(model=agent_id, openai_client=client)
    return OpenAIResponsesWSModel(model=agent_id, openai_client=client)


@pytest.mark.parametrize("kind", ["responses", "chat", "websocket"])
async def test_tool_round_trip(
    kind: str, server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    client = AsyncOpenAI(base_url=server.api, api_key=alice.key, max_retries=0)
    model = build(kind, client, alice.fake_agent)
    agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model)
    word = marker()
    try:
        result = await Runner.run(agent, f"{word}\n{WEATHER_CALL}")
        if kind == "websocket":
            assert isinstance(model, OpenAIResponsesWSModel)
            await model.close()
    finally:
        await client.close()
    assert result.final_output == "tool said: sunny in Paris"
    sent = upstream_log.bodies_with(word)
    assert len(sent) == 2, "one upstream call for the tool call, one for the answer"
    assert tool_messages(sent[1]) == ["sunny in Paris"]


@pytest.mark.parametrize("kind", ["responses", "websocket"])
async def test_second_run_chained_by_previous_response_id(
    kind: str, server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    client = AsyncOpenAI(base_url=server.api, api_key=alice.key, max_retries=0)
    model = build(kind, client, alice.fake_agent)
    agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model)
    first_word, second_word = marker(), marker()
    try:
        first = await Runner.run(
            agent, f"{first_word}\n{WEATHER_CALL}", auto_previous_response_id=True
        )
        assert first.last_response_id and first.last_response_id.startswith("resp_")
        second = await Runner.run(
            agent,
            f"{second_word}\n!text chained",
            previous_response_id=first.last_response_id,
        )
        if isinstance(model, OpenAIResponsesWSModel):
            await model.close()
    finally:
        await client.close()
    assert second.final_output == "chained"
    (chained,) = upstream_log.bodies_with(second_word)
    # The stored chain reached the upstream: the first run's question and tool result.
    assert first_word in str(chained["messages"])
    assert tool_messages(chained) == ["sunny in Paris"]
