"""Serves the two run routes ahead of FastAPI's middleware stack and router.

The routes stay declared on their FastAPI routers (the OpenAPI document, and every other
method or path, are unchanged), but a POST to exactly one of these paths goes straight
to its endpoint. FastAPI's middleware chain, route matching and request wrapper cost
more CPU than the rest of a proxied request's routing, and the middleware also wraps
`send` for every streamed frame. Errors become responses through the same handlers,
and the body limit applies as on every route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agenthost.http.body_limit import BodyLimit
from agenthost.http.errors import error_response
from agenthost.http.metrics import observe

Endpoint = Callable[[Request], Awaitable[Response]]


class _Endpoints:
    """The ASGI app behind the lane: one endpoint per path."""

    def __init__(self, routes: dict[str, Endpoint]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.routes[scope["path"]](request)
        except Exception as exc:
            response = error_response(request, exc)
        await response(scope, receive, send)


class FastLaneApp(FastAPI):
    """A FastAPI app whose `fast_lane` POST routes skip its stack."""

    fast_lane: dict[str, Endpoint]
    _lane: ASGIApp | None = None

    def open_fast_lane(self, routes: dict[str, Endpoint], max_body_bytes: int) -> None:
        self.fast_lane = routes
        self._lane = BodyLimit(_Endpoints(routes), max_bytes=max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        lane = self._lane
        if (
            lane is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.fast_lane
        ):
            scope["app"] = self
            await observe(lane, scope, receive, send, scope["path"])
            return
        await observe(super().__call__, scope, receive, send, "")
