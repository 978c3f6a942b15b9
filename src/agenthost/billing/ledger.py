"""Group commit for ledger settles, with retries while the database is away.

Each settle is one user's transaction rows plus their balance change. Settles that
arrive while a commit is in flight are written together in the next database
transaction, so under load the ledger costs one commit per batch instead of one per
request, and a lone settle is written at once (no timer, no added latency). Each
settle lands whole or not at all: if a batch fails, its settles are retried one by one
so a single bad one cannot take the others down.

A settle that fails because the database is unreachable is not lost: it is kept and
retried in the background (with backoff) until it commits, and `after` runs then; the
caller is told it was deferred instead of waiting. Settles still pending at shutdown
get one last try, and are logged in full if that fails too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

from agenthost.storage.database import Database
from agenthost.storage.repositories import balances, rollups

log = logging.getLogger(__name__)

MAX_BATCH = 256
RETRY_FIRST_SECONDS = 0.25
RETRY_MAX_SECONDS = 2.0
# Errors of the settle itself: retrying cannot help.
_PERMANENT = (IntegrityError, DataError, ProgrammingError)

After = Callable[[int | None], Awaitable[None]]


class SettleDeferred(Exception):
    """The database is unavailable; the settle is queued and will be written later."""


@dataclass(slots=True)
class _Settle:
    user_id: str
    rows: list[dict[str, Any]]
    charge: bool
    after: After | None
    done: asyncio.Future[int | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class LedgerWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_Settle] = []
        self._flusher: asyncio.Task[None] | None = None
        self._deferred: list[_Settle] = []
        self._retrier: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Settles waiting for the database to come back."""
        return len(self._deferred)

    @property
    def waiting(self) -> int:
        """Settles not yet written: queued for the next batch, or deferred."""
        return len(self._queue) + len(self._deferred)

    async def write(
        self, user_id: str, rows: list[dict[str, Any]], charge: bool, after: After | None = None
    ) -> int | None:
        """Write the rows (and, if `charge`, the balance change); the new balance or None.

        Raises `SettleDeferred` when the database is unavailable: the settle is kept and
        retried, and `after` runs once it is written.
        """
        settle = _Settle(user_id, rows, charge, after)
        self._queue.append(settle)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller that is cancelled must not cancel a batch others wait on.
        credits = await asyncio.shield(settle.done)
        if after is not None:
            await after(credits)
        return credits

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                results = await self._commit(batch)
            except Exception:
                for settle in batch:
                    await self._commit_alone(settle)
                continue
            for settle, credits in zip(batch, results, strict=True):
                settle.done.set_result(credits)

    async def _commit(self, batch: list[_Settle]) -> list[int | None]:
        return await self._db.write(lambda connection: _write_batch(connection, batch))

    async def _commit_alone(self, settle: _Settle) -> None:
        try:
            (credits,) = await self._commit([settle])
        except _PERMANENT as exc:
            settle.done.set_exception(exc)
        except Exception:
            log.warning("database unavailable: ledger settle kept for retry", exc_info=True)
            self._defer(settle)
            settle.done.set_exception(SettleDeferred("ledger settle deferred"))
        else:
            settle.done.set_result(credits)

    def _defer(self, settle: _Settle) -> None:
        self._deferred.append(settle)
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.create_task(self._retry_deferred())

    async def _retry_deferred(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while self._deferred:
            await asyncio.sleep(delay)
            if await self._write_deferred():
                delay = RETRY_FIRST_SECONDS
            else:
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _write_deferred(self) -> bool:
        """Try the oldest deferred settle; True when it was written (or can never be)."""
        settle = self._deferred[0]
        try:
            (credits,) = await self._commit([settle])
        except _PERMANENT:
            log.exception("deferred ledger settle rejected: %s", _dump(settle))
            self._deferred.pop(0)
            return True
        except Exception:
            return False
        self._deferred.pop(0)
        if settle.after is not None:
            await settle.after(credits)
        return True

    async def aclose(self) -> None:
        """Stop retrying; give pending settles one last try and log any that still fail."""
        if self._retrier is not None:
            self._retrier.cancel()
        while self._deferred and await self._write_deferred():
            pass
        for settle in self._deferred:
            log.error("ledger settle lost at shutdown: %s", _dump(settle))
        self._deferred.clear()


def _write_batch(connection: Connection, batch: list[_Settle]) -> list[int | None]:
    """One transaction for the batch: every row in one insert, the usage rollups, then
    one balance change per user charged. Each charging settle learns its user's balance
    after the batch."""
    balances.insert_transactions(connection, [row for settle in batch for row in settle.rows])
    rollups.add(connection, [settle.rows for settle in batch])
    changes: dict[str, int] = {}
    for settle in batch:
        if settle.charge:
            change = sum(row["credits"] for row in settle.rows)
            changes[settle.user_id] = changes.get(settle.user_id, 0) + change
    credits = {user: balances.change_balance(connection, user, c) for user, c in changes.items()}
    return [credits[s.user_id] if s.charge else None for s in batch]


def _dump(settle: _Settle) -> str:
    return orjson.dumps(settle.rows, default=str).decode()
