"""Open Responses over HTTP: create (JSON or SSE, foreground or background), retrieve,
delete, list input items, cancel, compact. Every stored response is visible to its owner
only, and to a key limited to some agents only when made through one of them; anyone
else gets the same 404 as for an id that never existed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.errors import InvalidRequest, NotFound
from agenthost.events import Usage
from agenthost.http import responses_ws
from agenthost.http.deps import PrincipalDep, ServicesDep, authenticated
from agenthost.http.openapi import (
    id_links,
    json_responses,
    request_body,
    stream_or_json_responses,
)
from agenthost.http.streaming import coalesced, json_response, sse_response, until_disconnect
from agenthost.protocols import sse
from agenthost.protocols.errors import invalid_body
from agenthost.protocols.responses import decode, wire
from agenthost.protocols.responses.encode import usage_object
from agenthost.runs import history
from agenthost.runs import turn as flow
from agenthost.runs.background import run_in_background
from agenthost.services import Services
from agenthost.storable import require_storable
from agenthost.storage.models import StoredResponse
from agenthost.storage.repositories import responses as repo

router = APIRouter()
router.include_router(responses_ws.router)  # WebSocket mode shares the /responses path


def response_not_found(response_id: str) -> NotFound:
    return NotFound(
        f"Response with id '{response_id}' not found.", code="response_not_found", param="id"
    )


async def _owned(services: Services, principal: Principal, response_id: str) -> StoredResponse:
    require_storable(response_id, "response_id")
    async with services.db.session() as session:
        row = await repo.get_owned(session, response_id, principal.user_id, principal.agent_scope)
    if row is None:
        raise response_not_found(response_id)
    return row


@router.post(
    "/responses",
    summary="Create a response",
    operation_id="createResponse",
    openapi_extra=request_body(wire.CreateResponseRequest),
    responses=stream_or_json_responses(
        "A response object, or with `stream: true` its SSE events",
        id_links(
            "response_id", "getResponse", "listInputItems", "cancelResponse", "deleteResponse"
        ),
    ),
)
async def create_response(request: Request) -> Response:
    services, principal = await authenticated(request)
    try:
        body = wire.CreateResponseRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise invalid_body(exc) from None
    request.state.agent_id = body.model  # for the access log
    if body.background:
        return await _background(services, principal, body)
    turn = await flow.prepare(services, principal, body)
    if body.stream:
        # Failures before the first token are plain HTTP errors, not a 200 stream.
        await until_disconnect(request, flow.begin(turn))
        headers = turn.execution.headers  # x-ratelimit-*, x-agenthost-served-by
        return sse_response(coalesced(_frames(turn), turn.execution.state), headers)
    completed = await until_disconnect(request, _complete(turn))
    return json_response(completed, headers=turn.execution.headers)


async def _complete(turn: flow.Turn) -> dict[str, Any]:
    # The client learns the id only with the answer: one write, at the end.
    await flow.begin(turn, store_at_end=True)
    return await flow.final_response(turn)


async def _frames(turn: flow.Turn) -> AsyncGenerator[bytes, None]:
    async with aclosing(turn.events()) as events:
        async for event in events:
            yield sse.event_frame(event["type"], event)
    yield sse.DONE


async def _background(
    services: Services, principal: Principal, body: wire.CreateResponseRequest
) -> Response:
    if body.store is False:
        raise InvalidRequest("'background' requires 'store' to be true.", param="store")
    turn = await flow.prepare(services, principal, body)
    created = turn.stream.created() if body.stream else None
    await turn.save_new()
    if created is None:
        services.background.start(turn.id, run_in_background(turn))
        return json_response(turn.stream.response)
    # Streamed: the run keeps its events and this request follows them like any resume,
    # so a client that leaves stops following, never the run.
    recording = services.event_log.record(turn.id)
    recording.add(created)
    await recording.flush()
    services.background.start(turn.id, run_in_background(turn, recording))
    return sse_response(_followed(services, turn.id, -1))


async def _followed(services: Services, response_id: str, after: int) -> AsyncIterator[bytes]:
    async with aclosing(services.event_log.follow(response_id, after)) as events:
        async for event in events:
            yield sse.event_frame(event["type"], event)
    yield sse.DONE


@router.get(
    "/responses/{response_id}",
    summary="Retrieve a response",
    operation_id="getResponse",
    responses=stream_or_json_responses(
        "The response object, or with `stream=true` its kept SSE events (background only)"
    ),
)
async def get_response(
    response_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    row = await _owned(services, principal, response_id)
    if not stream:
        return json_response(row.body)
    if not await services.event_log.kept(response_id):
        raise InvalidRequest(
            f"Response '{response_id}' has no stream to resume: only responses created "
            "with 'background': true and 'stream': true keep their events.",
            code="stream_not_available",
            param="stream",
        )
    after = -1 if starting_after is None else starting_after
    return sse_response(_followed(services, response_id, after))


@router.delete(
    "/responses/{response_id}",
    summary="Delete a response",
    operation_id="deleteResponse",
    responses=json_responses("Deletion confirmation"),
)
async def delete_response(
    response_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    await _owned(services, principal, response_id)
    await services.background.cancel(response_id)
    async with services.db.session() as session:
        deleted = await repo.delete_owned(session, response_id, principal.user_id)
    if not deleted:
        raise response_not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


@router.post(
    "/responses/{response_id}/cancel",
    summary="Cancel a background response",
    operation_id="cancelResponse",
    responses=json_responses("The response object"),
)
async def cancel_response(
    response_id: str, principal: PrincipalDep, services: ServicesDep
) -> Response:
    row = await _owned(services, principal, response_id)
    if not row.body.get("background"):
        raise InvalidRequest(
            "Only responses created with 'background': true can be cancelled.",
            code="not_background",
            param="response_id",
        )
    if row.status in repo.RUNNING:
        await services.background.cancel(response_id)
        async with services.db.session() as session:
            await repo.set_status(session, response_id, "cancelled")
    return json_response((await _owned(services, principal, response_id)).body)


def _page(
    items: list[dict[str, Any]], after: str | None, before: str | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    positions = {item.get("id"): n for n, item in enumerate(items)}
    start, end = 0, len(items)
    if after is not None:
        if after not in positions:
            raise InvalidRequest(f"No input item with id '{after}'.", param="after")
        start = positions[after] + 1
    if before is not None:
        if before not in positions:
            raise InvalidRequest(f"No input item with id '{before}'.", param="before")
        end = positions[before]
    window = items[start:end]
    return window[:limit], len(window) > limit


@router.get(
    "/responses/{response_id}/input_items",
    summary="List a response's input items",
    operation_id="listInputItems",
    responses=json_responses("A page of input items"),
)
async def list_input_items(
    response_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    after: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    include: Annotated[list[str] | None, Query(alias="include[]")] = None,
) -> Response:
    row = await _owned(services, principal, response_id)
    items = list(row.input_items or [])
    if order == "desc":
        items.reverse()
    data, has_more = _page(items, after, before, limit)
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


@router.post(
    "/responses/compact",
    summary="Compact a conversation",
    operation_id="compactResponse",
    openapi_extra=request_body(wire.CompactRequest),
    responses=json_responses("A compaction"),
)
async def compact_response(
    request: Request, principal: PrincipalDep, services: ServicesDep
) -> Response:
    try:
        body = wire.CompactRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise invalid_body(exc) from None
    await services.access.resolve(principal, body.model)
    earlier = await history.load_history(services, principal, body.previous_response_id, None)
    items = await _compactable(services, principal, body, earlier)
    sealed = history.sealer(services).seal(items, principal.user_id)
    compaction = {"type": "compaction", "id": ids.prefixed("cmp"), "encrypted_content": sealed}
    return json_response(
        {
            "id": ids.prefixed("resp"),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [compaction],
            "usage": usage_object(Usage()),  # sealing calls no model
        }
    )


async def _compactable(
    services: Services,
    principal: Principal,
    body: wire.CompactRequest,
    earlier: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """History and input as flat items: earlier compaction items are opened, not nested."""
    parsed = decode.parse_input(body.input)
    found = await history.references(services, principal, parsed, earlier)
    opener = history.sealer(services)
    items: list[dict[str, Any]] = []
    for n, item in enumerate(earlier + decode.normalise(parsed, found)):
        if item.get("type") == "compaction":
            inner = opener.open(item["encrypted_content"], principal.user_id, f"input[{n}]")
            items.extend(decode.normalise(wire.ITEMS.validate_python(inner), {}))
        else:
            items.append(item)
    if not items:
        raise InvalidRequest("There is nothing to compact: 'input' is empty.", param="input")
    return items
