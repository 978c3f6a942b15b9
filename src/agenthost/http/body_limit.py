"""ASGI middleware that refuses bodies over `limits.max_body_bytes` with a 413."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthost.errors import RequestTooLarge
from agenthost.protocols.errors import error_payload


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if int(value) > self.max_bytes:  # the HTTP server validated the number
                    await self._reject(send)
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
                if seen > self.max_bytes:
                    raise RequestTooLarge(f"Request body exceeds {self.max_bytes} bytes.")
            return message

        try:
            await self.app(scope, counting_receive, send)
        except RequestTooLarge:
            # Routes read the body before answering, so no response has started here.
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = orjson.dumps(
            error_payload(
                f"Request body exceeds {self.max_bytes} bytes.",
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
