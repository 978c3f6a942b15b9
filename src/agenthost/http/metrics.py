"""`GET /metrics` and the per-request figures behind it (observability/metrics.py).

`observe` wraps the whole application (fast lane included) once: it reads the status
from the response's start and the route template the router left in the scope, so the
`route` label is `/api/agents/v1/responses/{response_id}`, never a raw path.
"""

from __future__ import annotations

import hmac
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


async def observe(app: ASGIApp, scope: Scope, receive: Receive, send: Send, route: str) -> None:
    """Run `app` for one HTTP request or WebSocket, counting it with its status and
    duration (`route`: the label, or "" to read it from the router afterwards)."""
    started = time.perf_counter()
    status = 500  # what the client gets when the app raises before answering

    async def sending(message: Message) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
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
        label = route or route_of(scope)
        interface = interface_of(scope["path"])
        metrics.requested(label, str(status), interface, time.perf_counter() - started)


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
