"""ASGI middleware that refuses bodies over `limits.max_body_bytes` with a 413.

The API answers in its JSON error shape. Web pages (every other path) answer with the
HTML page the web layer installs as `app.state.html_too_large`, naming the limit and
linking back to the form; their limit is `page_max_bytes` when smaller, since no form
needs as much as an API call with its whole conversation.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthost.errors import RequestTooLarge
from agenthost.http.errors import TooLargePage, too_large_page
from agenthost.protocols.errors import error_payload


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, page_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.page_max_bytes = min(max_bytes, page_max_bytes or max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = too_large_page(scope)
        most = self.max_bytes if page is None else self.page_max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if int(value) > most:  # the HTTP server validated the number
                    await self._reject(scope, receive, send, most, page)
                    return
                # The HTTP server holds the body to its declared length: nothing to count.
                await self.app(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > most:
                    raise RequestTooLarge(f"Request body exceeds {most} bytes.", limit=most)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except RequestTooLarge:
            # Routes read the body before answering, so no response has started here.
            # (Inside FastAPI's stack the error handlers answer first: http/errors.py.)
            await self._reject(scope, receive, send, most, page)

    @staticmethod
    async def _reject(
        scope: Scope, receive: Receive, send: Send, most: int, page: TooLargePage | None
    ) -> None:
        if page is not None:
            await page(Request(scope), most)(scope, receive, send)
            return
        body = orjson.dumps(
            error_payload(
                f"Request body exceeds {most} bytes.",
                "invalid_request_error",
                "request_too_large",
            )
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
