"""POST /chat/completions: OpenAI Chat Completions over an agent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from agenthost import ids
from agenthost.errors import AgentHostError
from agenthost.events import RunFinished
from agenthost.http import url_guard
from agenthost.http.deps import authenticated
from agenthost.http.errors import describe, error_payload, validation_error
from agenthost.http.openapi import request_body, stream_or_json_responses
from agenthost.http.responses import json_response, sse_response
from agenthost.http.run import Execution, until_disconnect
from agenthost.protocols import sse
from agenthost.protocols.chat_completions import decode, wire
from agenthost.protocols.chat_completions.encode import ChunkEncoder, CompletionBuilder

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
        return validation_error(exc)
    agent = await services.access.resolve(principal, body.model)
    await url_guard.check_chat(body)
    run_request = decode.decode(body)
    execution = Execution(services, principal, agent, run_request, ids.prefixed("chatcmpl"))
    if body.stream:
        # A client that leaves before the first token cancels the upstream call too.
        await until_disconnect(request, execution.start())
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        encoder = ChunkEncoder(execution.request_id, body.model, include_usage)
        return sse_response(_frames(execution, encoder), execution.headers)
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


async def _frames(execution: Execution, encoder: ChunkEncoder) -> AsyncIterator[bytes]:
    yield sse.data_frame(encoder.first())
    state = execution.state
    held: list[bytes] = []  # frames of events that arrived together: one write
    try:
        async with aclosing(execution.events()) as events:
            async for event in events:
                held.extend(sse.data_frame(chunk) for chunk in encoder.encode(event))
                if held and not state.ready_events:
                    yield b"".join(held)
                    held.clear()
        if held:
            yield b"".join(held)
    except AgentHostError as exc:
        yield b"".join([*held, sse.data_frame(describe(exc)[1])])
    except Exception:
        log.exception("chat stream failed")
        error = error_payload("Internal server error.", "server_error", "internal_error")
        yield b"".join([*held, sse.data_frame(error)])
    yield sse.DONE
