"""Fast JSON responses, an SSE response that stops its producer when the client leaves,
frames written in batches, and work cancelled by a client that disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agenthost.observability import metrics
from agenthost.runtime.loop import RunState

T = TypeVar("T")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


class EventStreamResponse(Response):
    """Streams SSE frames, one `send` per frame.

    Unlike Starlette's StreamingResponse under ASGI 2.4, it always watches for
    `http.disconnect`, so a client that leaves cancels the run at once (not only at
    the next write), and it always closes the frame iterator, so the run settles.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.frames = frames
        merged = {
            **SSE_HEADERS,
            **(headers or {}),
            "content-type": "text/event-stream; charset=utf-8",
        }
        # No content-length: the body is open-ended.
        self.raw_headers = [(k.lower().encode(), v.encode()) for k, v in merged.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stream() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        metrics.ACTIVE_STREAMS.inc()
        try:
            async with anyio.create_task_group() as group:

                async def run(func: Any) -> None:
                    try:
                        await func()
                    except OSError:
                        pass  # the client went away mid-write
                    group.cancel_scope.cancel()

                group.start_soon(run, stream)
                await run(watch)
        finally:
            metrics.ACTIVE_STREAMS.dec()
            with anyio.CancelScope(shield=True):
                await self.frames.aclose()  # type: ignore[attr-defined]


def sse_response(frames: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> Response:
    return EventStreamResponse(frames, headers)


async def coalesced(frames: AsyncGenerator[bytes, None], state: RunState) -> AsyncIterator[bytes]:
    """The frames of events that arrived together (`state.ready_events` says more are
    already in memory) leave in one write: fewer socket writes under load. Closing
    this closes `frames` at once (the run behind them settles then)."""
    held: list[bytes] = []
    async with aclosing(frames):
        async for frame in frames:
            held.append(frame)
            if not state.ready_events:
                yield b"".join(held)
                held.clear()
    if held:
        yield b"".join(held)


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it at once if the client disconnects first."""
    task = asyncio.ensure_future(work)

    async def watch(task: asyncio.Future[T]) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.create_task(watch(task))
    try:
        return await task
    finally:
        watcher.cancel()
        # A failed task keeps its exception, whose traceback holds this frame, which
        # holds the task: a cycle that keeps the whole request (its body included)
        # until the cyclic collector runs. Dropping the task breaks it at once.
        del task, watcher
