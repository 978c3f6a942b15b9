"""`Throttle.attempt`: a per-key count in a fixed window (the share form's limit), in this
process or in Redis, and in this process while Redis is away."""

from __future__ import annotations

import secrets

import pytest
from redis.asyncio import Redis

from agenthost.auth.throttle import MemoryThrottle, RedisThrottle
from tests.billing.conftest import reachable


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_attempts_over_the_limit_wait_for_the_window_to_end() -> None:
    clock = Clock()
    throttle = MemoryThrottle(clock=clock)
    assert [await throttle.attempt("share:a", 3, 600) for _ in range(3)] == [None] * 3
    clock.now += 100
    assert await throttle.attempt("share:a", 3, 600) == 500  # counted from the first
    assert await throttle.attempt("share:b", 3, 600) is None  # another key
    clock.now += 500
    assert await throttle.attempt("share:a", 3, 600) is None  # a new window


@pytest.mark.redis
async def test_redis_attempts_are_counted_in_redis() -> None:
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"test:share:{secrets.token_hex(4)}"
    try:
        first, second = (RedisThrottle(redis, MemoryThrottle()) for _ in range(2))
        assert await first.attempt(key, 2, 600) is None
        assert await second.attempt(key, 2, 600) is None  # another worker, one count
        wait = await first.attempt(key, 2, 600)
        assert wait is not None and 590 <= wait <= 600
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_redis_away_counts_in_this_process() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    throttle = RedisThrottle(redis, MemoryThrottle())
    try:
        assert await throttle.attempt("share:x", 1, 600) is None
        assert await throttle.attempt("share:x", 1, 600) is not None
    finally:
        await redis.aclose()
