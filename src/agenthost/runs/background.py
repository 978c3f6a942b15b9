"""Runs that continue without their client (Open Responses `background: true`).

Tasks are kept by response id so `cancel` can stop one. This registry is per process; a
cancel that reaches another worker is seen through the stored status, which the running
task re-reads (`Turn._cancel_requested`), so no state must be shared in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio

from agenthost.storage.repositories import responses as repo

if TYPE_CHECKING:
    from agenthost.runs.event_log import Recording
    from agenthost.runs.turn import Turn

log = logging.getLogger(__name__)


class BackgroundRuns:
    """Background tasks of this process, keyed by response id."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"background {key}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("background run %s failed", key, exc_info=task.exception())

    def is_running(self, key: str) -> bool:
        return key in self._tasks

    async def cancel(self, key: str) -> bool:
        """Cancel and wait for the task; False when it does not run in this process."""
        task = self._tasks.get(key)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return True

    async def close(self) -> None:
        for key in list(self._tasks):
            await self.cancel(key)


async def run_in_background(turn: Turn, recording: Recording | None = None) -> None:
    """The body of a background task: start, run to the end, store the outcome; with a
    `recording` (the client asked to stream), keep every event for its followers."""
    try:
        await _run(turn, recording)
    finally:
        if recording is not None:
            with anyio.CancelScope(shield=True):
                await recording.finish(turn.stream.response)
                turn.services.event_log.forget(turn.id)


async def _run(turn: Turn, recording: Recording | None) -> None:
    try:
        await turn.execution.start()
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            if isinstance(exc, Exception):
                await _keep(recording, turn.fail_events(exc))
            else:
                turn.stream.abandon("cancelled", turn.execution.state.usage)
            await turn.save_final()
        if not isinstance(exc, Exception):
            raise
        return
    in_progress = turn.stream.in_progress()
    async with turn.services.db.session() as session:
        await repo.set_status(session, turn.id, "in_progress")
    await _keep(recording, [in_progress])
    async with aclosing(turn.events(opening=False)) as events:
        async for event in events:
            # A failure ends as a stored `failed` response; nobody waits for an error.
            await _keep(recording, [event])


async def _keep(recording: Recording | None, events: list[dict[str, Any]]) -> None:
    if recording is None:
        return
    for event in events:
        recording.add(event)
    await recording.keep()
