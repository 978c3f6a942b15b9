"""Group commit for ledger settles.

Each settle is one user's transaction rows plus their balance change. Settles that
arrive while a commit is in flight are written together in the next database
transaction, so under load the ledger costs one commit per batch instead of one per
request, and a lone settle is written at once (no timer, no added latency). Each
settle still lands whole or not at all: if a batch fails, its settles are retried one
by one so a single bad one cannot take the others down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agenthost.storage.database import Database
from agenthost.storage.repositories import balances

MAX_BATCH = 256


@dataclass(slots=True)
class _Settle:
    user_id: str
    rows: list[dict[str, Any]]
    charge: bool
    done: asyncio.Future[int | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class LedgerWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_Settle] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, user_id: str, rows: list[dict[str, Any]], charge: bool) -> int | None:
        """Write the rows (and, if `charge`, the balance change); the new balance or None."""
        settle = _Settle(user_id, rows, charge)
        self._queue.append(settle)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller that is cancelled must not cancel a batch others wait on.
        return await asyncio.shield(settle.done)

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
        results: list[int | None] = []
        async with self._db.session() as session:
            for settle in batch:
                if settle.charge:
                    results.append(await balances.apply_many(session, settle.user_id, settle.rows))
                else:
                    await balances.record(session, settle.rows)
                    results.append(None)
        return results

    async def _commit_alone(self, settle: _Settle) -> None:
        try:
            (credits,) = await self._commit([settle])
        except Exception as exc:
            settle.done.set_exception(exc)
        else:
            settle.done.set_result(credits)
