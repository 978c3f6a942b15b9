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


# --- a cache that keeps answering while it is re-read -------------------------------------


class Source:
    """A load that counts its calls and can be held back or made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def load(self) -> str:
        self.calls += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return f"v{self.calls}"


async def test_a_fresh_value_is_served_without_a_load() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    source = Source()

    assert await flight.cached("k", source.load, ttl=5, age=1.0, value="cached") == "cached"
    assert source.calls == 0


async def test_a_stale_value_is_served_at_once_and_re_read_once_in_the_background() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    source = Source()
    source.gate.clear()  # the database is slow

    served = [await flight.cached("k", source.load, ttl=5, age=6.0, value="old") for _ in range(20)]

    await asyncio.sleep(0)  # the background read starts
    assert served == ["old"] * 20  # nobody waited for it
    assert source.calls == 1
    source.gate.set()
    await asyncio.sleep(0.01)
    assert await flight.cached("k", source.load, ttl=5, age=None, value=None) == "v2"


async def test_nothing_cached_or_long_expired_waits_for_the_read() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    source = Source()

    assert await flight.cached("k", source.load, ttl=5, age=None, value=None) == "v1"
    assert await flight.cached("k", source.load, ttl=5, age=10.0, value="ancient") == "v2"


async def test_a_failing_background_read_is_logged_and_the_value_still_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    source = Source()
    source.error = RuntimeError("database down")

    assert await flight.cached("k", source.load, ttl=5, age=7.0, value="old") == "old"
    await asyncio.sleep(0.01)

    assert "database down" in caplog.text
    with pytest.raises(RuntimeError, match="database down"):
        await flight.cached("k", source.load, ttl=5, age=11.0, value="old")
