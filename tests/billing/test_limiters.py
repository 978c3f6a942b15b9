"""The rate limiters and reservation stores, in-process and on a real Redis, side by side."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agenthost.billing.reservations import (
    DatabaseReservations,
    MemoryReservations,
    ReservationStore,
)
from agenthost.errors import RateLimited
from agenthost.limits.base import RateLimiter, Scope, format_reset
from agenthost.limits.fallback import FallbackRateLimiter, RedisHealth, connect
from agenthost.limits.memory import MemoryRateLimiter
from agenthost.settings import RateLimit
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from tests.billing.conftest import REDIS_URL, admin_sql, reachable

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


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def reservations(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ReservationStore]:
    if request.param == "memory":
        yield MemoryReservations()
        return
    name = ""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/holds.db"
    else:
        if not reachable("127.0.0.1", 5432):
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
        name = f"agenthost_holds_{secrets.token_hex(4)}"
        await admin_sql(f"CREATE DATABASE {name}")
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    db = Database(url)
    try:
        await upgrade(db.engine)
        yield DatabaseReservations(db)
    finally:
        await db.dispose()
        if name:
            await admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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


def taking(amount: int, seen: list[int] | None = None) -> Callable[[int], int | None]:
    """A `decide` that holds `amount` when it fits what is free, recording what it saw."""

    def decide(available: int) -> int | None:
        if seen is not None:
            seen.append(available)
        return amount if amount <= available else None

    return decide


async def test_reservations_report_what_others_hold(reservations: ReservationStore) -> None:
    user = f"usr_{secrets.token_hex(6)}"
    seen: list[int] = []
    first = await reservations.hold(user, f"a-{user}", 60, 1000, taking(100, seen))
    second = await reservations.hold(user, f"b-{user}", 60, 1000, taking(50, seen))
    assert first is not None and second is not None and seen == [1000, 900]
    await reservations.release(first)
    await reservations.hold(user, f"c-{user}", 0.2, 1000, taking(1, seen))
    assert seen[-1] == 950
    await asyncio.sleep(0.3)
    await reservations.hold(user, f"d-{user}", 60, 1000, taking(1, seen))
    assert seen[-1] == 950  # "c" expired; "b" still held
    assert await reservations.hold(user, f"e-{user}", 60, 1000, taking(999)) is None
    await reservations.hold(user, f"f-{user}", 60, 1000, taking(1, seen))
    assert seen[-1] == 949  # the refused "e" held nothing, not even for a moment
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
    await limiter.aclose()


async def test_concurrent_holds_of_one_user_always_see_each_other(
    reservations: ReservationStore,
) -> None:
    """50 holds at once: each sees the ones before it, so the last sees all the others
    (with holds that did not see each other, two runs could spend the same credits)."""
    user = f"usr_{secrets.token_hex(6)}"
    seen: list[int] = []
    results = await asyncio.gather(
        *(reservations.hold(user, f"h{n}-{user}", 60, 400, taking(10, seen)) for n in range(50))
    )
    # 40 fit in 400 credits; each saw the holds recorded before it, the rest were refused.
    assert sum(r is not None for r in results) == 40
    assert sorted(seen)[-40:] == [400 - 10 * n for n in range(39, -1, -1)]
    again: list[int] = []
    await reservations.hold(user, f"h0-{user}", 60, 400, taking(5, again))  # holding less
    assert again == [10]  # its own earlier hold is not among the others


async def test_holds_survive_redis_going_away_because_they_are_not_in_redis(
    tmp_path: Path,
) -> None:
    """Several workers share reservations through the database: a Redis outage degrades
    rate limits to per-worker state, never the money."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    await upgrade(db.engine)
    worker_a, worker_b = DatabaseReservations(db), DatabaseReservations(db)
    await worker_a.hold("usr_y", "run-a", 60, 1000, taking(700))
    seen: list[int] = []
    await worker_b.hold("usr_y", "run-b", 60, 1000, taking(10, seen))
    assert seen == [300]
    await db.dispose()


def test_reset_durations_are_written_like_openai() -> None:
    assert format_reset(0.12) == "120ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(7) == "7s"
    assert format_reset(360) == "6m0s"
