"""Leases on running stored responses, so one whose worker died does not stay
`in_progress` forever.

Each worker renews the `updated_at` of the responses it is running every third of
`limits.run_lease_seconds` (one UPDATE for all of them); any worker ends a running
response not renewed for a whole lease as `failed` with `worker_lost`. What the dead
worker's run had charged stays charged; what it had not settled was never charged (its
balance holds expire on their own).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Connection

from agenthost.storage.database import Database
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import responses as repo

log = logging.getLogger(__name__)


class Leases:
    def __init__(self, db: Database, lease_seconds: float) -> None:
        self._db = db
        self.lease_seconds = lease_seconds
        self._running: set[str] = set()

    def hold(self, response_id: str) -> None:
        self._running.add(response_id)

    def release(self, response_id: str) -> None:
        self._running.discard(response_id)

    async def tick(self) -> list[str]:
        """Renew this worker's leases and end the expired ones of others; their ids."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self.lease_seconds)
        running = list(self._running)

        def work(connection: Connection) -> list[str]:
            if running:
                repo.renew(connection, running, now)
            return repo.end_lost(connection, stale_before, now)

        ended = await self._db.write(work)
        if ended:
            log.warning("ended %d response(s) whose worker was lost: %s", len(ended), ended)
        return ended

    async def run(self) -> None:
        """Tick every third of a lease until cancelled."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.tick()
            except Exception as exc:  # the database away: try again next time
                log.warning("lease renewal failed: %s", str(exc).splitlines()[0][:200])
