"""pydantic-ai's OpenAI models (Chat Completions and Responses) against agenthost: a tool
round trip run by the framework, streamed text, and usage as the framework reports it."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.clients.conftest import WEATHER_CALL, UpstreamLog, marker, tool_messages, weather
from tests.conftest import Tenant
from tests.support.server import Server


def build(kind: str, client: AsyncOpenAI, agent_id: str) -> Model:
    provider = OpenAIProvider(openai_client=client)
    if kind == "chat":
        return OpenAIChatModel(agent_id, provider=provider)
    return OpenAIResponsesModel(agent_id, provider=provider)


@pytest.mark.parametrize("kind", ["chat", "responses"])
async def test_tool_round_trip_and_stream(
    kind: str, server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    async with AsyncOpenAI(base_url=server.api, api_key=alice.key, max_retries=0) as client:
        agent = Agent(build(kind, client, alice.fake_agent), tools=[weather])
        word = marker()
        result = await agent.run(f"{word}\n{WEATHER_CALL.replace('get_weather', 'weather')}")
        async with agent.run_stream("!text streamed by pydantic ai") as streamed:
            chunks = [chunk async for chunk in streamed.stream_text(delta=True)]
    assert result.output == "tool said: sunny in Paris"
    assert result.usage.output_tokens > 0 and result.usage.requests == 2
    sent = upstream_log.bodies_with(word)
    assert len(sent) == 2 and tool_messages(sent[1]) == ["sunny in Paris"]
    assert "".join(chunks) == "streamed by pydantic ai"
