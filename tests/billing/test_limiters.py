"""The rate limiters and reservation stores, in-process and on a real Redis, side by side."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

import pytest

from agenthost.billing.reservations import (
    FallbackReservations,
    MemoryReservations,
    ReservationStore,
)
from agenthost.errors import RateLimited
from agenthost.limits.base import RateLimiter, Scope, format_reset
from agenthost.limits.fallback import FallbackRateLimiter, RedisHealth, connect
from agenthost.limits.memory import MemoryRateLimiter
from agenthost.settings import RateLimit
from tests.billing.conftest import REDIS_URL, reachable

BACKENDS = ["memory", "redis"]


@pytest.fixture(params=BACKENDS)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    shared = FallbackRateLimiter(connect(REDIS_URL), RedisHealth())
    yield shared
    await shared.aclose()


@pytest.fixture(params=BACKENDS)
async def reservations(request: pytest.FixtureRequest) -> AsyncIterator[ReservationStore]:
    if request.param == "memory":
        yield MemoryReservations()
        return
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    redis = connect(REDIS_URL)
    yield FallbackReservations(redis, RedisHealth())
    await redis.aclose(close_connection_pool=True)


def scope(kind: str = "key", **limit: int) -> Scope:
    return Scope(f"{kind}:{secrets.token_hex(6)}", RateLimit(**limit))


async def test_requests_per_minute_refuse_with_retry_after(limiter: RateLimiter) -> None:
    key = scope(requests_per_minute=2)
    first = await limiter.acquire([key], 10, "a", 60)
    second = await limiter.acquire([key], 10, "b", 60)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-limit-requests"] == "2"
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([key], 10, "c", 60)
    assert 0 < refused.value.retry_after <= 60
    assert refused.value.code == "rate_limit_exceeded"


async def test_a_refusal_by_one_scope_counts_in_no_scope(limiter: RateLimiter) -> None:
    key, user = scope(requests_per_minute=5), scope("user", requests_per_minute=1)
    await limiter.acquire([key, user], 1, "a", 60)
    with pytest.raises(RateLimited):
        await limiter.acquire([key, user], 1, "b", 60)
    lease = await limiter.acquire([key], 1, "c", 60)
    assert lease.headers["x-ratelimit-remaining-requests"] == "3"  # a and c only


async def test_tokens_are_corrected_with_actual_usage(limiter: RateLimiter) -> None:
    key = scope(tokens_per_minute=1000)
    lease = await limiter.acquire([key], 900, "a", 60)
    assert lease.headers["x-ratelimit-remaining-tokens"] == "100"
    with pytest.raises(RateLimited):
        await limiter.acquire([key], 200, "b", 60)
    await limiter.release(lease, 50)  # the run used 50 tokens, not the 900 estimated
    again = await limiter.acquire([key], 200, "c", 60)
    assert again.headers["x-ratelimit-remaining-tokens"] == "750"


async def test_concurrency_slot_is_freed_on_release_or_expiry(limiter: RateLimiter) -> None:
    key = scope(concurrent_requests=1)
    lease = await limiter.acquire([key], 1, "a", 60)
    with pytest.raises(RateLimited):
        await limiter.acquire([key], 1, "b", 60)
    await limiter.release(lease, 1)
    short = await limiter.acquire([key], 1, "c", 0.2)
    assert short.lease_id == "c"
    await asyncio.sleep(0.3)  # a crashed run's slot expires
    await limiter.acquire([key], 1, "d", 60)


async def test_reservations_report_what_others_hold(reservations: ReservationStore) -> None:
    user = f"usr_{secrets.token_hex(6)}"
    first, others = await reservations.hold(user, "a", 100, 60)
    assert others == 0
    second, others = await reservations.hold(user, "b", 50, 60)
    assert others == 100
    await reservations.release(first)
    _, others = await reservations.hold(user, "c", 1, 0.2)
    assert others == 50
    await asyncio.sleep(0.3)
    _, others = await reservations.hold(user, "d", 1, 60)
    assert others == 50  # "c" expired; "b" still held
    await reservations.release(second)


async def test_redis_down_degrades_to_in_process_limits_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = connect("redis://127.0.0.1:1/0")
    limiter = FallbackRateLimiter(dead, RedisHealth())
    key = scope(requests_per_minute=1)
    with caplog.at_level(logging.WARNING, logger="agenthost.limits.fallback"):
        await limiter.acquire([key], 1, "a", 60)
        with pytest.raises(RateLimited):
            await limiter.acquire([key], 1, "b", 60)
    assert "Redis is unreachable" in caplog.text
    store = FallbackReservations(dead, RedisHealth())
    _, others = await store.hold("usr_x", "a", 10, 60)
    _, others = await store.hold("usr_x", "b", 10, 60)
    assert others == 10
    await limiter.aclose()


def test_reset_durations_are_written_like_openai() -> None:
    assert format_reset(0.12) == "120ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(7) == "7s"
    assert format_reset(360) == "6m0s"
