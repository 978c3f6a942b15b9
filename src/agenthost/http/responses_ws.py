"""Open Responses WebSocket mode (spec 2026-04-24) on the same path as `POST /responses`.

The client sends `response.create` messages (a create body plus `type`, without `stream`,
`stream_options` or `background`); they are processed one at a time, and each answers with
the same events as the SSE stream, one JSON text frame per event. Failures outside a
response are `WebSocketErrorEvent`s: `{"type": "error", "status": …, "error": {…}}`.
`previous_response_id` also finds this connection's `store: false` responses; a failed
continuation evicts the id it continued from. The connection ends after
`limits.websocket_connection_seconds` with `websocket_connection_limit_reached`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.types import Message
from starlette.websockets import WebSocketState

from agenthost.auth.principal import Principal
from agenthost.errors import AgentHostError, InvalidRequest, RequestTooLarge
from agenthost.http.errors import json_error
from agenthost.protocols.errors import describe, error_payload, internal_error, invalid_body
from agenthost.protocols.responses import wire
from agenthost.runs import turn as flow
from agenthost.runs.history import LocalHistory
from agenthost.services import Services

log = logging.getLogger(__name__)
router = APIRouter()
DISALLOWED = ("stream_options", "background")
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008


def _error_event(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", "status": status, "error": payload["error"]}


def _domain_error_event(exc: AgentHostError) -> dict[str, Any]:
    status, payload = describe(exc)
    return _error_event(status, payload)


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = (websocket.headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _authenticate(websocket: WebSocket, services: Services) -> Principal | None:
    """The same Bearer key check as HTTP, on the upgrade request; refused before accept."""
    try:
        return await services.callers.authenticate(_bearer(websocket))
    except AgentHostError as exc:
        status, payload = describe(exc)
        try:
            await websocket.send_denial_response(json_error(status, payload))
        except RuntimeError:  # the server cannot send an HTTP denial: close instead
            await websocket.close(code=CLOSE_POLICY, reason=payload["error"]["message"][:120])
        return None


def _check_size(text: str, most: int) -> None:
    """A message obeys the HTTP body limit (larger frames are refused by the server
    before they reach here: `serve` caps them just above it)."""
    if len(text) > most or (len(text) * 4 > most and len(text.encode("utf-8", "replace")) > most):
        raise RequestTooLarge(
            f"The message is larger than the limit of {most} bytes (limits.max_body_bytes)."
        )


def _parse(text: str) -> wire.CreateResponseRequest:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("The message is not valid JSON.", code="invalid_json") from exc
    if not isinstance(data, dict) or data.get("type") != "response.create":
        raise InvalidRequest(
            "Send messages of type 'response.create'.", code="invalid_event_type", param="type"
        )
    for name in DISALLOWED:
        if name in data:
            raise InvalidRequest(
                f"'{name}' is not allowed in WebSocket mode.",
                code="unsupported_parameter",
                param=name,
            )
    del data["type"]
    # A WebSocket turn always streams: `stream` (which some clients always send) is
    # accepted and ignored, as long as it is a boolean.
    stream = data.pop("stream", None)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", code="invalid_type", param="stream")
    return wire.CreateResponseRequest.model_validate(data)


class Connection:
    """One socket: its principal, its local history and its clock."""

    def __init__(self, websocket: WebSocket, services: Services, principal: Principal) -> None:
        self.websocket = websocket
        self.services = services
        self.principal = principal
        self.local = LocalHistory()
        self.pending: collections.deque[Message] = collections.deque()

    async def send(self, event: dict[str, Any]) -> None:
        await self.websocket.send_text(orjson.dumps(event).decode())

    async def handle(self, text: str) -> None:
        body: wire.CreateResponseRequest | None = None
        try:
            _check_size(text, self.services.settings.limits.max_body_bytes)
            body = _parse(text)
            turn = await flow.prepare(self.services, self.principal, body, self.local)
            turn.decoded.run.streamed = True  # its events go out as they come
            await flow.begin(turn)
        except ValidationError as exc:
            await self.send(_domain_error_event(invalid_body(exc)))
            return
        except AgentHostError as exc:
            self._forget_failed(body, exc)
            await self.send(_domain_error_event(exc))
            return
        async with aclosing(turn.events()) as events:
            await self._relay(events)
        if turn.stream.response["status"] == "failed":
            self._forget_failed(body, turn.error)
        else:
            self.local.remember(turn.id, turn.context())

    async def _relay(self, events: AsyncIterator[dict[str, Any]]) -> None:
        """Send the turn's events while listening to the socket: a client that closes
        it cancels the run at once; a message sent meanwhile waits its turn."""

        async def pump() -> None:
            async for event in events:
                await self.send(event)

        sending = asyncio.ensure_future(pump())
        listening = asyncio.ensure_future(self.websocket.receive())
        await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()  # safe: a cancelled receive loses no message
            await sending
            return
        message = listening.result()
        if message["type"] == "websocket.disconnect":
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
        self.pending.append(message)
        await sending

    def _forget_failed(
        self, body: wire.CreateResponseRequest | None, exc: BaseException | None
    ) -> None:
        """A failed continuation evicts the response it continued from."""
        if body is None or body.previous_response_id is None:
            return
        if isinstance(exc, InvalidRequest) and exc.code == "previous_response_not_found":
            return
        self.local.evict(body.previous_response_id)


async def _limit_reached(connection: Connection) -> None:
    payload = error_payload(
        "The WebSocket connection reached its time limit; open a new connection.",
        "invalid_request_error",
        "websocket_connection_limit_reached",
    )
    await connection.send(_error_event(400, payload))
    await connection.websocket.close(code=CLOSE_NORMAL)


async def _next_text(connection: Connection) -> str:
    pending = connection.pending
    message = pending.popleft() if pending else await connection.websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
    if message.get("text") is not None:
        return str(message["text"])
    return bytes(message.get("bytes") or b"").decode("utf-8", "replace")


@router.websocket("/responses")
async def responses_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    principal = await _authenticate(websocket, services)
    if principal is None:
        return
    await websocket.accept()
    connection = Connection(websocket, services, principal)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.limits.websocket_connection_seconds
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                await _limit_reached(connection)
                return
            try:
                text = await asyncio.wait_for(_next_text(connection), remaining)
            except TimeoutError:
                await _limit_reached(connection)
                return
            await connection.handle(text)
    except WebSocketDisconnect:
        return
    except Exception:
        log.exception("websocket connection failed")
        if websocket.application_state == WebSocketState.CONNECTED:
            await connection.send(_error_event(500, internal_error()))
            await websocket.close(code=1011)
