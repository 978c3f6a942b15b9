"""Kept stream events of background responses, in batches of consecutive sequence numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import ResponseEvents

Event = dict[str, Any]


def append(connection: Connection, response_id: str, events: list[Event]) -> None:
    """One batch; `events` are consecutive and follow the batches already kept."""
    connection.execute(
        insert(ResponseEvents).values(
            response_id=response_id,
            first_sequence=events[0]["sequence_number"],
            last_sequence=events[-1]["sequence_number"],
            events=events,
        )
    )


async def after(
    session: AsyncSession, response_id: str, sequence: int, batches: int = 50
) -> list[Event]:
    """Events numbered above `sequence`, in order, from at most `batches` batches."""
    rows = await session.execute(
        select(ResponseEvents.events)
        .where(ResponseEvents.response_id == response_id, ResponseEvents.last_sequence > sequence)
        .order_by(ResponseEvents.first_sequence)
        .limit(batches)
    )
    return [event for (batch,) in rows for event in batch if event["sequence_number"] > sequence]


async def kept(session: AsyncSession, response_id: str) -> bool:
    """Whether this response's events are kept (it was created streaming in background)."""
    first = await session.scalar(
        select(ResponseEvents.first_sequence)
        .where(ResponseEvents.response_id == response_id)
        .limit(1)
    )
    return first is not None
