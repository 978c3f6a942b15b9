"""Concurrent loads of the same key share one run (a leaf module: asyncio and logging).

Used where a cached value expires under load: without it every request that arrives
while the first one is reading from the database starts its own read, and each takes a
pooled connection (a herd of hundreds at high concurrency). `refresh` re-reads in the
background, for caches that keep serving an expired value meanwhile (no request waits
for the read)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)

# A value this much past its time to live is no longer served while it is re-read (the
# reads keep failing): the caller waits for a read, and sees its error.
STALE_FACTOR = 2.0


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """`load()`'s result, sharing a load already running for `key`. A caller that is
        cancelled does not cancel the load the others wait on."""
        future = self._running.get(key) or self._start(key, load)
        return await asyncio.shield(future)

    async def cached(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        ttl: float,
        age: float | None,
        value: V | None,
    ) -> V:
        """A cache's `value` (`age` seconds old; None: nothing cached) while it is fresh;
        past `ttl` the same value, with `load()` started in the background; long past it
        (or with nothing cached) `load()`'s result. `load()` stores what it reads."""
        if age is not None and age < ttl * STALE_FACTOR:
            if age >= ttl:
                self.refresh(key, load)
            return cast(V, value)  # what was cached with that age
        return await self.run(key, load)

    def refresh(self, key: K, load: Callable[[], Awaitable[V]]) -> None:
        """Start `load()` in the background unless a load of `key` is running."""
        if key not in self._running:
            self._start(key, load).add_done_callback(_log_failure)

    def _start(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        future = asyncio.ensure_future(load())
        self._running[key] = future
        future.add_done_callback(lambda done: self._finished(key, done))
        return future

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody waits for is not logged as lost


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and (error := done.exception()) is not None:
        log.warning("a background cache refresh failed: %s", error)
