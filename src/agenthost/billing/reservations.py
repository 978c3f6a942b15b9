"""Credits held by runs in flight, so concurrent runs cannot spend the same balance twice.

A reservation is (user, id, credits, expiry). `hold` decides and records one atomically:
it learns what the user's *other* live reservations add up to, hands `balance - others`
to the caller's `decide`, and stores the amount `decide` returns (replacing the earlier
amount of the same id: a run holds more, or less, as it goes), or nothing when `decide`
refuses. Deciding inside the hold means a request that will be refused never holds
anything, even for a moment, so it cannot crowd out others. Expired reservations (a worker
that died mid-run) are dropped on the way.

With several workers (`redis_url` set) reservations live in the database, which every
worker shares and which must answer for a request to be admitted anyway (a Redis outage
degrades rate limits to per-worker state, never the money); with one worker, in a dict of
this process.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from agenthost.storage.database import Database
from agenthost.storage.repositories import holds

# Given the credits the caller may still use (balance minus others' holds), the amount to
# hold, or None to refuse.
Decide = Callable[[int], int | None]


@dataclass(slots=True, frozen=True)
class Reservation:
    user_id: str
    reservation_id: str
    credits: int


class ReservationStore(ABC):
    @abstractmethod
    async def hold(
        self, user_id: str, reservation_id: str, ttl: float, balance: int, decide: Decide
    ) -> Reservation | None:
        """Hold what `decide` asks for given `balance` minus the others' holds; None when
        it refused (an earlier hold of this id is then left as it was). A store that
        reads the balance itself under its lock uses that instead of `balance`."""

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
        self, user_id: str, reservation_id: str, ttl: float, balance: int, decide: Decide
    ) -> Reservation | None:
        # No await between reading and recording: atomic on the event loop.
        now = self._clock()
        held = self._held.setdefault(user_id, {})
        for key, (_, expiry) in list(held.items()):
            if expiry <= now:
                del held[key]
        others = sum(amount for key, (amount, _) in held.items() if key != reservation_id)
        amount = decide(balance - others)
        if amount is None:
            if not held:
                del self._held[user_id]
            return None
        held[reservation_id] = (amount, now + ttl)
        return Reservation(user_id, reservation_id, amount)

    async def release(self, reservation: Reservation) -> None:
        held = self._held.get(reservation.user_id)
        if held is not None:
            held.pop(reservation.reservation_id, None)
            if not held:
                del self._held[reservation.user_id]


class DatabaseReservations(ReservationStore):
    """Reservations in the database, shared by every worker and host."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def hold(
        self, user_id: str, reservation_id: str, ttl: float, balance: int, decide: Decide
    ) -> Reservation | None:
        def work(connection: Connection) -> int | None:
            return holds.hold(connection, user_id, reservation_id, ttl, balance, decide)

        amount = await self._db.write(work)
        return None if amount is None else Reservation(user_id, reservation_id, amount)

    async def release(self, reservation: Reservation) -> None:
        hold_id = reservation.reservation_id
        await self._db.write(lambda connection: holds.release(connection, hold_id))
