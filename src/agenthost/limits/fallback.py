"""Redis first, in-process while Redis is down: limits degrade, they never disappear."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from agenthost.limits.base import Lease, RateLimiter, Scope
from agenthost.limits.memory import MemoryRateLimiter
from agenthost.limits.redis import RedisRateLimiter

log = logging.getLogger(__name__)
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def connect(url: str, max_connections: int = 64) -> Redis:
    """A client that tells a dead Redis from a busy one.

    A refused or unreachable Redis fails fast (0.5 s to connect), so limits fall back at
    once. A reply, though, may wait for this worker's own busy event loop: under a burst
    of requests a short read timeout mistook load for an outage and dropped the shared
    limits, so reads and pool waits get 5 s. The pool blocks when all its connections are
    busy instead of failing.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5.0,
        socket_connect_timeout=0.5,
        socket_timeout=5.0,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


class RedisHealth:
    """Whether to try Redis now. After a failure it is skipped for `retry_seconds`,
    and the warning is logged at most once per `warn_seconds`."""

    def __init__(
        self,
        retry_seconds: float = 5.0,
        warn_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry = retry_seconds
        self._warn = warn_seconds
        self._clock = clock
        self._down_until = 0.0
        self._warned_at: float | None = None

    def usable(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self, what: str, exc: BaseException) -> None:
        now = self._clock()
        self._down_until = now + self._retry
        if self._warned_at is None or now - self._warned_at >= self._warn:
            self._warned_at = now
            log.warning(
                "Redis is unreachable (%s: %s); %s uses this worker's in-process state "
                "until it answers again, so limits hold per worker only",
                type(exc).__name__,
                exc,
                what,
            )

    def recovered(self) -> None:
        if self._warned_at is not None:
            log.warning("Redis answers again; shared limits are back")
            self._warned_at = None


class FallbackRateLimiter(RateLimiter):
    """Uses Redis while it answers and the in-process limiter while it does not."""

    def __init__(self, redis: Redis, health: RedisHealth) -> None:
        self._redis = redis
        self._primary = RedisRateLimiter(redis)
        self._fallback = MemoryRateLimiter()
        self._health = health

    async def acquire(
        self, scopes: list[Scope], tokens: int, lease_id: str, lease_seconds: float
    ) -> Lease:
        if self._health.usable():
            try:
                lease = await self._primary.acquire(scopes, tokens, lease_id, lease_seconds)
            except REDIS_ERRORS as exc:
                self._health.failed("rate limiting", exc)
            else:
                self._health.recovered()
                return lease
        return await self._fallback.acquire(scopes, tokens, lease_id, lease_seconds)

    async def release(self, lease: Lease, actual_tokens: int) -> None:
        if lease.backend is not self._primary:
            await self._fallback.release(lease, actual_tokens)
            return
        try:
            await self._primary.release(lease, actual_tokens)
        except REDIS_ERRORS as exc:  # the lease expires by itself; only the correction is lost
            self._health.failed("rate limiting", exc)

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)
