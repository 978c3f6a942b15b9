"""Concurrent loads of the same key share one run (a leaf module: asyncio only).

Used where a cached value expires under load: without it every request that arrives
while the first one is reading from the database starts its own read, and each takes a
pooled connection (a herd of hundreds at high concurrency)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """`load()`'s result, sharing a load already running for `key`. A caller that is
        cancelled does not cancel the load the others wait on."""
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(load())
            self._running[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(future)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody waits for is not logged as lost
