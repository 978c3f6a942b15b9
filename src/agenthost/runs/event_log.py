"""The kept stream of a background response created with `stream: true`.

Its run adds every event to a `Recording`, which writes them to the database in batches
(every FLUSH_SECONDS, and at once for the first and the terminal event), so
`GET /responses/{id}?stream=true&starting_after=N` can replay them on any worker and then
follow the run to its end. Followers in the run's own process read its memory and wake on
each event; others poll the database. A follower that leaves never stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from agenthost.protocols.responses.encode import TERMINAL_EVENTS, closing_event
from agenthost.storage.database import Database
from agenthost.storage.repositories import response_events as events_repo
from agenthost.storage.repositories import responses as responses_repo

log = logging.getLogger(__name__)
Event = dict[str, Any]
FLUSH_SECONDS = 0.1
POLL_SECONDS = 0.2


class Recording:
    """The events of one running response, in memory while it runs, and in the database."""

    def __init__(self, db: Database, response_id: str) -> None:
        self._db = db
        self.response_id = response_id
        self.events: list[Event] = []  # sequence_number == position
        self.done = False
        self._flushed = 0
        self._flushed_at = time.monotonic()
        self._changed = asyncio.Event()

    def add(self, event: Event) -> None:
        self.events.append(event)
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self) -> None:
        await self._changed.wait()

    async def keep(self) -> None:
        """Write the events not yet written; a terminal event is written at once."""
        due = time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if due or (self.events and self.events[-1]["type"] in TERMINAL_EVENTS):
            await self.flush()

    async def flush(self) -> None:
        batch = self.events[self._flushed :]
        self._flushed_at = time.monotonic()
        if not batch:
            return
        try:
            await self._db.write(lambda c: events_repo.append(c, self.response_id, batch))
        except Exception as exc:  # the database away: the next flush tries again
            log.warning("could not keep events of %s: %s", self.response_id, exc)
            return
        self._flushed += len(batch)

    async def finish(self, response: dict[str, Any]) -> None:
        """The run ended: make sure the stream ends with a terminal event, write the rest."""
        if not self.events or self.events[-1]["type"] not in TERMINAL_EVENTS:
            self.add(closing_event(response, len(self.events)))
        await self.flush()
        self.done = True
        self._wake()


class EventLog:
    """The recordings running in this process, and followers of any response's stream."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._live: dict[str, Recording] = {}

    def record(self, response_id: str) -> Recording:
        recording = self._live[response_id] = Recording(self._db, response_id)
        return recording

    def forget(self, response_id: str) -> None:
        self._live.pop(response_id, None)

    async def kept(self, response_id: str) -> bool:
        if response_id in self._live:
            return True
        async with self._db.session() as session:
            return await events_repo.kept(session, response_id)

    def follow(self, response_id: str, after: int) -> AsyncGenerator[Event, None]:
        """Events numbered above `after`, up to and including the terminal one."""
        recording = self._live.get(response_id)
        if recording is not None:
            return _from_memory(recording, after)
        return _from_database(self._db, response_id, after)


async def _from_memory(recording: Recording, after: int) -> AsyncGenerator[Event, None]:
    position = max(after + 1, 0)
    while True:
        while position < len(recording.events):
            yield recording.events[position]
            position += 1
        if recording.done:
            return
        await recording.changed()


async def _from_database(db: Database, response_id: str, after: int) -> AsyncGenerator[Event, None]:
    last = after
    while True:
        events = await _read(db, response_id, last)
        ended = False
        if not events:
            status, body = await _state(db, response_id)
            if status in responses_repo.RUNNING:
                await asyncio.sleep(POLL_SECONDS)
                continue
            ended = True  # or deleted: what was written before it ended, then the end
            events = await _read(db, response_id, last)
            if body is not None and not any(e["type"] in TERMINAL_EVENTS for e in events):
                next_sequence = (events[-1]["sequence_number"] if events else last) + 1
                events.append(closing_event(body, next_sequence))
        for event in events:
            yield event
            last = event["sequence_number"]
            if event["type"] in TERMINAL_EVENTS:
                return
        if ended:
            return


async def _read(db: Database, response_id: str, after: int) -> list[Event]:
    async with db.session() as session:
        return await events_repo.after(session, response_id, after)


async def _state(db: Database, response_id: str) -> tuple[str | None, dict[str, Any] | None]:
    async with db.session() as session:
        return await responses_repo.state_of(session, response_id)
