"""POST /chat/completions: OpenAI Chat Completions over an agent."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from agenthost import ids
from agenthost.errors import AgentHostError
from agenthost.events import RunFinished
from agenthost.http.deps import authenticated
from agenthost.http.openapi import request_body, stream_or_json_responses
from agenthost.http.streaming import coalesced, json_response, sse_response, until_disconnect
from agenthost.protocols import sse
from agenthost.protocols.chat_completions import decode, wire
from agenthost.protocols.chat_completions.encode import ChunkEncoder, CompletionBuilder
from agenthost.protocols.errors import describe_any, invalid_body
from agenthost.runs import url_guard
from agenthost.runs.execution import Execution

log = logging.getLogger(__name__)
router = APIRouter()


_OPENAPI = request_body(wire.ChatCompletionRequest)
_RESPONSES = stream_or_json_responses(
    "A chat.completion object, or with `stream: true` an SSE stream of "
    "chat.completion.chunk objects ending with `data: [DONE]`"
)


@router.post(
    "/chat/completions",
    summary="Create a chat completion",
    openapi_extra=_OPENAPI,
    responses=_RESPONSES,
)
async def create_chat_completion(request: Request) -> Response:
    services, principal = await authenticated(request)
    try:
        body = wire.ChatCompletionRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise invalid_body(exc) from None
    request.state.agent_id = body.model  # for the access log
    agent = await services.access.resolve(principal, body.model)
    await url_guard.check_chat(body)
    run_request = decode.decode(body)
    execution = Execution(services, principal, agent, run_request, ids.prefixed("chatcmpl"))
    if body.stream:
        # A client that leaves before the first token cancels the upstream call too.
        await until_disconnect(request, execution.start())
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        encoder = ChunkEncoder(execution.request_id, body.model, include_usage)
        frames = coalesced(_frames(execution, encoder), execution.state)
        return sse_response(frames, execution.headers)
    completion = await until_disconnect(request, _complete(execution, body.model))
    return json_response(completion, headers=execution.headers)


async def _complete(execution: Execution, model: str) -> dict[str, object]:
    await execution.start()
    builder = CompletionBuilder(execution.request_id, model)
    async with aclosing(execution.events()) as events:
        async for event in events:
            if isinstance(event, RunFinished):
                return builder.build(event)
            builder.add(event)
    raise AssertionError("a run always ends with RunFinished")


async def _frames(execution: Execution, encoder: ChunkEncoder) -> AsyncGenerator[bytes, None]:
    yield sse.data_frame(encoder.first())
    try:
        async with aclosing(execution.events()) as events:
            async for event in events:
                for chunk in encoder.encode(event):
                    yield sse.data_frame(chunk)
    except Exception as exc:
        if not isinstance(exc, AgentHostError):
            log.exception("chat stream failed")
        yield sse.data_frame(describe_any(exc)[1])
    yield sse.DONE
