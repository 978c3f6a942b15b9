"""The audit log: security-relevant changes, recorded in the change's own transaction.

The repositories that make such changes call `record` with the session the change is
made in, so a change and its audit row commit (or roll back) together. Who acts comes
from `acting_as`, set once per CLI command and per web request: a change made with no
actor set is recorded as `system` (first start, background jobs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import AuditEvent, utcnow

SYSTEM = "system"
_actor: ContextVar[str] = ContextVar("audit_actor", default=SYSTEM)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Changes recorded inside are attributed to `actor` (an email, or `cli:NAME`)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def set_actor(actor: str) -> None:
    """For the rest of this context (a web request's task, a CLI process)."""
    _actor.set(actor)


def actor() -> str:
    return _actor.get()


def record(
    session: AsyncSession,
    action: str,
    target_kind: str,
    target_id: str,
    target: str,
    details: dict[str, Any] | None = None,
    *,
    by: str | None = None,
) -> None:
    """Add the audit row to `session`: it commits with the change it describes."""
    session.add(
        AuditEvent(
            at=utcnow(),
            actor=(by or actor())[:320],
            action=action,
            target_kind=target_kind,
            target_id=target_id[:320],
            target=target[:320],
            details=details,
        )
    )


async def events(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Newest first. `action` matches a prefix (`api_key.` for every key event),
    `target` the target's id or label; `before_id` pages back."""
    query = select(AuditEvent)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if target:
        query = query.where((AuditEvent.target_id == target) | (AuditEvent.target == target))
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    query = query.order_by(AuditEvent.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "target_kind": event.target_kind,
        "target_id": event.target_id,
        "details": event.details or {},
    }
