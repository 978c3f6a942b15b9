"""Whether the caller streams reaches the provider: only a streamed answer is batched."""

from __future__ import annotations

import pytest

from agenthost.conversation import AgentSpec, ToolChoice
from agenthost.protocols.chat_completions import decode as chat_decode
from agenthost.protocols.chat_completions.wire import ChatCompletionRequest
from agenthost.protocols.responses import decode as responses_decode
from agenthost.protocols.responses.wire import CreateResponseRequest
from agenthost.runtime.context import model_request

AGENT = AgentSpec(id="agent_s", name="s", owner_id="usr_s", provider="p", model="m")


def _unused_opener(token: str, param: str) -> list[dict[str, object]]:
    raise AssertionError("no compaction items here")


@pytest.mark.parametrize("stream", [True, False, None])
def test_chat_requests_say_whether_they_stream(stream: bool | None) -> None:
    body = ChatCompletionRequest.model_validate(
        {"model": "a", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )
    run = chat_decode.decode(body)

    call = model_request(AGENT, run, run.messages, [], ToolChoice())

    assert run.streamed is call.streamed is bool(stream)


@pytest.mark.parametrize("stream", [True, False, None])
def test_responses_requests_say_whether_they_stream(stream: bool | None) -> None:
    body = CreateResponseRequest.model_validate({"model": "a", "input": "hi", "stream": stream})

    decoded = responses_decode.decode(body, [], {}, _unused_opener)

    assert decoded.run.streamed is bool(stream)
