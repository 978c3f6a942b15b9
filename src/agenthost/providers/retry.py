"""Retries of an upstream call, only while nothing has reached the caller."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TypeVar

from agenthost.errors import UpstreamTimeout, UpstreamUnavailable
from agenthost.observability import metrics

T = TypeVar("T")  # what an attempt yields: model events, or batches of them


async def stream_with_retries(
    attempt: Callable[[float], AsyncGenerator[T, None]],
    *,
    provider: str,
    max_retries: int,
    timeout_seconds: float,
    deadline: float | None = None,
) -> AsyncGenerator[T, None]:
    """Run `attempt(deadline)`, retrying unavailable/timed-out upstreams with jittered
    exponential backoff (0.25 s · 2^n) inside one overall deadline: `timeout_seconds`
    from now, or the caller's `deadline` if that comes first. A failure after the first
    event is raised as is: a partial answer is never replayed. Each attempt is counted in
    `agenthost_upstream_attempts` by how it ended."""
    loop = asyncio.get_running_loop()
    own = loop.time() + timeout_seconds
    deadline = own if deadline is None else min(own, deadline)
    tries = 0
    while True:
        emitted = False
        outcome = "failed"  # anything else raised: an error no retry can help
        try:
            # aclosing: when our consumer stops, the attempt (and its response) closes now.
            async with aclosing(attempt(deadline)) as events:
                async for event in events:
                    emitted = True
                    yield event
            outcome = "served"
            return
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            outcome = "timeout" if isinstance(exc, UpstreamTimeout) else "unavailable"
            delay = 0.25 * 2**tries * random.uniform(0.8, 1.2)
            last = tries >= max_retries or loop.time() + delay >= deadline
            if emitted or last:
                raise
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"
            raise
        finally:
            metrics.UPSTREAM_ATTEMPTS.labels(provider, outcome).inc()
        tries += 1
        await asyncio.sleep(delay)
