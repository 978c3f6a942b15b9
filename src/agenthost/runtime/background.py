"""Runs that continue without their client (Open Responses `background: true`).

Tasks are kept by response id so `cancel` can stop one. This registry is per process; a
cancel that reaches another worker is seen through the stored status, which the running
task re-reads (see `http/responses_api.py`), so no state must be shared in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

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
