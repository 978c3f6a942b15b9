"""How long spend reports take on the seeded database (growth scenario): each
`usage report --by …` grouping, read from the rollups, over the whole year seeded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agenthost.storage.database import Database
from agenthost.storage.repositories import rollups


async def _time_reports(path: Path) -> dict[str, float]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    timings: dict[str, float] = {}
    try:
        for by in rollups.BY:
            started = time.perf_counter()
            async with db.session() as session:
                await rollups.report(session, by)
            timings[by] = round((time.perf_counter() - started) * 1000, 1)
    finally:
        await db.dispose()
    return timings


def time_reports(path: Path) -> dict[str, float]:
    """Milliseconds per grouping."""
    return asyncio.run(_time_reports(path))
