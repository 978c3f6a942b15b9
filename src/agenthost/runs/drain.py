"""Ending open runs before a stopping server's drain time is up.

On SIGTERM the server stops accepting and gives open requests
`limits.graceful_shutdown_seconds` to finish; a stream still open after that used to be
cut with no final event. `Drain.stop` (scheduled shortly before that deadline) interrupts
every run still streaming: its `Execution` turns the interruption into
`ServerShuttingDown`, which each protocol sends as its own ending (Chat Completions: an
error chunk and `[DONE]`; Open Responses: `error` then `response.failed`), and the run is
settled as usual.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Interruptible(Protocol):
    def interrupt(self) -> None: ...


class Drain:
    def __init__(self) -> None:
        self._open: set[Interruptible] = set()
        self.stopping = False

    def opened(self, run: Interruptible) -> None:
        self._open.add(run)
        if self.stopping:
            run.interrupt()

    def closed(self, run: Interruptible) -> None:
        self._open.discard(run)

    def stop(self) -> None:
        """Interrupt every open run (and any that opens from now on)."""
        self.stopping = True
        if self._open:
            log.warning("drain time is up: ending %d open run(s)", len(self._open))
        for run in list(self._open):
            run.interrupt()
