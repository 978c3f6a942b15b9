"""Credits held by runs in flight, so concurrent runs cannot spend the same balance twice.

A reservation is (user, id, credits, expiry). `hold` adds one (or replaces the amount of
the one with the same id: a run holds more, or less, as it goes) and returns what the
user's *other* live reservations add up to; expired ones (a worker that crashed mid-run)
are dropped on the way. In Redis this is one Lua script per user hash, shared by every
worker; without Redis it is a dict in this process (one worker only).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from agenthost.limits.fallback import REDIS_ERRORS, RedisHealth


@dataclass(slots=True, frozen=True)
class Reservation:
    user_id: str
    reservation_id: str
    credits: int
    store: object  # the store that holds it


class ReservationStore(ABC):
    @abstractmethod
    async def hold(
        self, user_id: str, reservation_id: str, credits: int, ttl_seconds: float
    ) -> tuple[Reservation, int]:
        """Add a reservation; returns it and the credits the user's others hold."""

    @abstractmethod
    async def release(self, reservation: Reservation) -> None: ...

    async def aclose(self) -> None:
        return None


class MemoryReservations(ReservationStore):
    """Reservations of this process only: correct with one worker."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, dict[str, tuple[int, float]]] = {}

    async def hold(
        self, user_id: str, reservation_id: str, credits: int, ttl_seconds: float
    ) -> tuple[Reservation, int]:
        now = self._clock()
        held = self._held.setdefault(user_id, {})
        for key, (_, expiry) in list(held.items()):
            if expiry <= now:
                del held[key]
        held.pop(reservation_id, None)
        others = sum(amount for amount, _ in held.values())
        held[reservation_id] = (credits, now + ttl_seconds)
        return Reservation(user_id, reservation_id, credits, self), others

    async def release(self, reservation: Reservation) -> None:
        held = self._held.get(reservation.user_id)
        if held is not None:
            held.pop(reservation.reservation_id, None)
            if not held:
                del self._held[reservation.user_id]


_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, amount, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, old in ipairs(expired) do redis.call('HDEL', KEYS[1], old) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do others = others + tonumber(value) end
local mine = redis.call('HGET', KEYS[1], id)
if mine then others = others - tonumber(mine) end
redis.call('HSET', KEYS[1], id, amount)
redis.call('ZADD', KEYS[2], now + ttl, id)
-- keep the keys as long as their longest-lived reservation
local keep = math.max(redis.call('PTTL', KEYS[1]), ttl)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return others
"""


def _keys(user_id: str) -> list[str]:
    base = f"ah:res:{{{user_id}}}"
    return [base, base + ":exp"]


class RedisReservations(ReservationStore):
    """Reservations shared by every worker; raises Redis errors to the fallback."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._hold = redis.register_script(_HOLD)

    async def hold(
        self, user_id: str, reservation_id: str, credits: int, ttl_seconds: float
    ) -> tuple[Reservation, int]:
        args: list[str | int] = [reservation_id, credits, int(ttl_seconds * 1000)]
        others = int(await self._hold(keys=_keys(user_id), args=args))
        return Reservation(user_id, reservation_id, credits, self), others

    async def release(self, reservation: Reservation) -> None:
        amounts, expiries = _keys(reservation.user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(amounts, reservation.reservation_id)
            pipe.zrem(expiries, reservation.reservation_id)
            await pipe.execute()


class FallbackReservations(ReservationStore):
    """Redis while it answers; this process's reservations while it does not."""

    def __init__(self, redis: Redis, health: RedisHealth) -> None:
        self._primary = RedisReservations(redis)
        self._fallback = MemoryReservations()
        self._health = health

    async def hold(
        self, user_id: str, reservation_id: str, credits: int, ttl_seconds: float
    ) -> tuple[Reservation, int]:
        if self._health.usable():
            try:
                return await self._primary.hold(user_id, reservation_id, credits, ttl_seconds)
            except REDIS_ERRORS as exc:
                self._health.failed("balance reservation", exc)
        return await self._fallback.hold(user_id, reservation_id, credits, ttl_seconds)

    async def release(self, reservation: Reservation) -> None:
        if reservation.store is not self._primary:
            await self._fallback.release(reservation)
            return
        try:
            await self._primary.release(reservation)
        except REDIS_ERRORS as exc:  # it expires by itself
            self._health.failed("balance reservation", exc)
