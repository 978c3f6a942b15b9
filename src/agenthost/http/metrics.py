"""`GET /metrics` and the per-request figures behind it (observability/metrics.py).

`observe` wraps the whole application (fast lane included) once: it reads the status
from the response's start and the route template the router left in the scope, so the
`route` label is `/api/agents/v1/responses/{response_id}`, never a raw path.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthost.errors import AuthenticationFailed
from agenthost.observability import metrics, tracing
from agenthost.settings import MetricsSettings

API_PREFIX = "/api/agents/v1"


def interface_of(path: str) -> str:
    if path.startswith(API_PREFIX):
        rest = path[len(API_PREFIX) :]
        if rest.startswith("/chat/"):
            return "chat"
        if rest.startswith("/responses"):
            return "responses"
        return "api"
    if path == "/metrics" or path == "/healthz":
        return "operations"
    return "web"


def route_of(scope: Scope) -> str:
    """The matched route's template, with the API prefix its router was included under."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return "unmatched"
    if scope["path"].startswith(API_PREFIX) and not path.startswith(API_PREFIX):
        return API_PREFIX + path
    return path


_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
access_log = logging.getLogger("agenthost.access")


def _request_id(scope: Scope) -> str:
    """The caller's `X-Request-Id` when it is a sane token (≤ 128 characters), else ours."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            sent: str = value.decode("latin-1")
            if _SANE_ID.fullmatch(sent):
                return sent
            break
    return "req_" + secrets.token_hex(12)


def _key_prefix(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            token: str = value.decode("latin-1").partition(" ")[2].strip()
            return token[:8] + "…" if token.startswith("sk-") else ("bearer" if token else "-")
    return "-"


async def observe(app: ASGIApp, scope: Scope, receive: Receive, send: Send, route: str) -> None:
    """Run `app` for one HTTP request or WebSocket: give it a request id (echoed in the
    `x-request-id` response header), count it with its status and duration, and write
    its access-log line (`route`: the label, or "" to read it from the router)."""
    started = time.perf_counter()
    status = 500  # what the client gets when the app raises before answering
    streamed = False
    request_id = _request_id(scope)
    scope.setdefault("state", {})["request_id"] = request_id
    id_header = (b"x-request-id", request_id.encode())

    async def sending(message: Message) -> None:
        nonlocal status, streamed
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", ()))  # a copy: responses may share theirs
            streamed = (b"content-type", b"text/event-stream; charset=utf-8") in headers
            headers.append(id_header)
            message = {**message, "headers": headers}
        elif kind == "websocket.accept":
            status = 101
        elif kind == "websocket.close" and status == 500:
            status = 403  # closed before accepting
        await send(message)

    traced = tracing.tracer() is not None
    try:
        if traced:
            await _traced(app, scope, receive, sending, route)
        else:
            await app(scope, receive, sending)
    finally:
        seconds = time.perf_counter() - started
        label = route or route_of(scope)
        metrics.requested(label, str(status), interface_of(scope["path"]), seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %d %.1fms id=%s key=%s agent=%s stream=%s",
                scope.get("method", "WS"),
                scope["path"],
                status,
                seconds * 1000,
                request_id,
                _key_prefix(scope),
                scope["state"].get("agent_id", "-"),
                "yes" if streamed else "no",
            )


async def _traced(app: ASGIApp, scope: Scope, receive: Receive, send: Send, route: str) -> None:
    """`app` inside the request's server span (named after its route once it is known)."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
    method = scope.get("method", "WEBSOCKET")
    status = 0

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    with tracing.request_span(method, route or scope["path"], headers) as span:
        try:
            await app(scope, receive, sending)
        finally:
            if span is not None:
                label = route or route_of(scope)
                span.update_name(f"{method} {label}")
                span.set_attribute("http.route", label)
                if status:
                    span.set_attribute("http.response.status_code", status)


def metrics_endpoint(settings: MetricsSettings) -> Callable[[Request], Awaitable[Response]]:
    token = settings.bearer_token.get_secret_value().encode() if settings.bearer_token else None

    async def scrape(request: Request) -> Response:
        if token is not None:
            sent = request.headers.get("authorization", "")
            scheme, _, value = sent.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token):
                raise AuthenticationFailed(
                    "A valid bearer token is required to read the metrics.", code="invalid_token"
                )
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return scrape
