"""Attempts counted in fixed windows, before the thing attempted is evaluated, so
simultaneous tries cannot all get through.

Sign-ins: `admit` counts one per account and per client address; `succeeded` forgets the
account's attempts. An account gets `per_account` attempts per window, an address
`per_address` (higher: an office behind one NAT shares it). Other per-user limits (the
share form, which tells whether an email has an account) use `attempt` with their own
key, limit and window.

Each count answers in one step (no await between reading and adding in this process;
one Redis pipeline of INCR + EXPIRE when Redis is configured, shared by every worker and
host). When Redis is away the count falls back to this process.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PER_ACCOUNT = 5
PER_ADDRESS = 20
WINDOW_SECONDS = 900.0


def _keys(email: str, address: str) -> tuple[str, str]:
    return f"login:account:{email.strip().lower()}", f"login:address:{address}"


class Throttle(ABC):
    def __init__(
        self,
        per_account: int = PER_ACCOUNT,
        per_address: int = PER_ADDRESS,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.per_account, self.per_address, self.window = per_account, per_address, window

    @abstractmethod
    async def admit(self, email: str, address: str) -> float | None:
        """Count this attempt; None when it may be checked, else seconds to wait."""

    @abstractmethod
    async def succeeded(self, email: str, address: str) -> None:
        """The account signed in: its attempts no longer count, nor does this one
        against the address (whose count is then its failures)."""

    @abstractmethod
    async def attempt(self, key: str, limit: int, window: float) -> float | None:
        """Count one attempt under `key`; None while at most `limit` were made in its
        `window` (seconds, from the first), else seconds until the window ends."""


class MemoryThrottle(Throttle):
    """Counts in this process (one worker, or Redis away)."""

    def __init__(
        self,
        per_account: int = PER_ACCOUNT,
        per_address: int = PER_ADDRESS,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(per_account, per_address, window)
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (attempts, window end)

    def _count(self, key: str, now: float, window: float | None = None) -> tuple[int, float]:
        if len(self._counts) > 100_000:  # bound memory under a flood of new names
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        window = self.window if window is None else window
        attempts, ends = self._counts.get(key, (0, now + window))
        if ends <= now:
            attempts, ends = 0, now + window
        self._counts[key] = (attempts + 1, ends)
        return attempts + 1, ends

    async def attempt(self, key: str, limit: int, window: float) -> float | None:
        now = self._clock()
        tried, ends = self._count(key, now, window)
        return max(1.0, ends - now) if tried > limit else None

    async def admit(self, email: str, address: str) -> float | None:
        now = self._clock()
        account, network = _keys(email, address)
        tried, account_ends = self._count(account, now)
        from_here, address_ends = self._count(network, now)
        waits = []
        if tried > self.per_account:
            waits.append(account_ends - now)
        if from_here > self.per_address:
            waits.append(address_ends - now)
        return max(1.0, max(waits)) if waits else None

    async def succeeded(self, email: str, address: str) -> None:
        account, network = _keys(email, address)
        self._counts.pop(account, None)
        attempts, ends = self._counts.get(network, (0, 0.0))
        if attempts > 1:
            self._counts[network] = (attempts - 1, ends)
        else:
            self._counts.pop(network, None)


class RedisThrottle(Throttle):
    """Counts in Redis, shared by every worker; this process's count while it is away."""

    def __init__(self, redis: Redis, fallback: MemoryThrottle) -> None:
        super().__init__(fallback.per_account, fallback.per_address, fallback.window)
        self._redis, self._fallback = redis, fallback

    async def admit(self, email: str, address: str) -> float | None:
        account, network = _keys(email, address)
        seconds = math.ceil(self.window)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in (account, network):
                    pipe.incr(key)
                    pipe.expire(key, seconds, nx=True)
                    pipe.ttl(key)
                tried, _, account_ttl, from_here, _, address_ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("login throttle: Redis unavailable (%s); counting in this process", exc)
            return await self._fallback.admit(email, address)
        waits = []
        if int(tried) > self.per_account:
            waits.append(float(account_ttl))
        if int(from_here) > self.per_address:
            waits.append(float(address_ttl))
        return max(1.0, max(waits)) if waits else None

    async def attempt(self, key: str, limit: int, window: float) -> float | None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, math.ceil(window), nx=True)
                pipe.ttl(key)
                tried, _, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("throttle: Redis unavailable (%s); counting in this process", exc)
            return await self._fallback.attempt(key, limit, window)
        return max(1.0, float(ttl)) if int(tried) > limit else None

    async def succeeded(self, email: str, address: str) -> None:
        account, network = _keys(email, address)
        try:
            await self._redis.delete(account)
            if await self._redis.decr(network) <= 0:
                await self._redis.delete(network)
        except (RedisError, OSError):
            pass
        await self._fallback.succeeded(email, address)
