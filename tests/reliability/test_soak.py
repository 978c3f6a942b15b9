"""A bounded soak on loopback: both interfaces, streamed and not, at high concurrency.
Zero errors; the server's memory and open file descriptors stay flat.

`AGENTHOST_SOAK_SECONDS` (default 30) sets the measured phase; the request count is
capped as well, so the test always ends by itself."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import Tenant
from tests.reliability.support import auth, open_fds, rss_kib
from tests.support.server import Server

SECONDS = float(os.environ.get("AGENTHOST_SOAK_SECONDS", "30"))
WARM_UP_SECONDS = 5.0
CONCURRENCY = 48
MAX_REQUESTS = 40_000
RSS_GROWTH_KIB = 40 * 1024
FD_GROWTH = 16


@dataclass
class Tally:
    ok: int = 0
    errors: list[str] = field(default_factory=list)


async def _one(client: httpx.AsyncClient, api: str, key: str, agent: str, kind: int) -> str | None:
    """One request; None when it succeeded completely, else what went wrong."""
    prompt = "!tokens 12"
    if kind % 2 == 0:
        message = {"role": "user", "content": prompt}
        body: dict[str, object] = {"model": agent, "messages": [message]}
        path = "/chat/completions"
    else:
        body = {"model": agent, "input": prompt}
        path = "/responses"
    stream = kind >= 2
    body["stream"] = stream
    async with client.stream("POST", f"{api}{path}", json=body, headers=auth(key)) as reply:
        data = await reply.aread()
    if reply.status_code != 200:
        return f"{path} {reply.status_code} {data[:120]!r}"
    if stream and not (b"[DONE]" in data or b"response.completed" in data):
        return f"{path} stream ended without its end"
    if b'"error"' in data and b'"error":null' not in data:
        return f"{path} error in body {data[:120]!r}"
    return None


async def _run(server: Server, tenant: Tenant, seconds: float, tally: Tally, budget: int) -> None:
    stop_at = time.monotonic() + seconds
    counter = itertools.count()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < stop_at:
                n = next(counter)
                if n >= budget:
                    return
                try:
                    problem = await _one(client, server.api, tenant.key, tenant.fake_agent, n % 4)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is None:
                    tally.ok += 1
                else:
                    tally.errors.append(problem)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _sample(server: Server) -> tuple[int, int]:
    assert server.proc is not None
    return rss_kib(server.proc.pid), open_fds(server.proc.pid)


@pytest.mark.soak
def test_soak_has_no_errors_and_flat_memory_and_descriptors(rserver: Server, carol: Tenant) -> None:
    warm = Tally()
    asyncio.run(_run(rserver, carol, WARM_UP_SECONDS, warm, MAX_REQUESTS))
    assert warm.errors == [], warm.errors[:5]
    time.sleep(1.0)
    rss_before, fds_before = _sample(rserver)
    tally = Tally()
    started = time.monotonic()
    asyncio.run(_run(rserver, carol, SECONDS, tally, MAX_REQUESTS))
    took = time.monotonic() - started
    time.sleep(1.0)  # let closed connections and settlements finish
    rss_after, fds_after = _sample(rserver)
    report = (
        f"{tally.ok} requests in {took:.1f}s ({tally.ok / took:.0f}/s) at {CONCURRENCY} "
        f"concurrent; RSS {rss_before // 1024}→{rss_after // 1024} MiB; "
        f"fds {fds_before}→{fds_after}"
    )
    print(report)
    assert tally.errors == [], (len(tally.errors), tally.errors[:5])
    assert tally.ok > 500, report
    assert rss_after - rss_before < RSS_GROWTH_KIB, report
    assert fds_after - fds_before <= FD_GROWTH, report
