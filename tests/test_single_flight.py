"""SingleFlight: concurrent loads of one key run once; failures reach every waiter."""

from __future__ import annotations

import asyncio

import pytest

from agenthost.single_flight import SingleFlight


async def test_concurrent_calls_share_one_load_and_a_later_call_loads_again() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return loads

    assert await asyncio.gather(*(flight.run("k", load) for _ in range(50))) == [1] * 50
    assert await flight.run("k", load) == 2  # the first load had ended
    assert await flight.run("other", load) == 3


async def test_a_failure_reaches_every_waiter_and_a_cancelled_waiter_spares_the_load() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise RuntimeError("database down")

    first = asyncio.ensure_future(flight.run("k", failing))
    second = asyncio.ensure_future(flight.run("k", failing))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    with pytest.raises(RuntimeError, match="database down"):
        await second
    assert first.cancelled()
