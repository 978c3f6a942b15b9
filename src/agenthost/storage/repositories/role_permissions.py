"""Per-role overrides of the configured remote-agent permissions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import RolePermission
from agenthost.storage.repositories import audit


async def list_all(session: AsyncSession) -> list[RolePermission]:
    return list((await session.execute(select(RolePermission))).scalars())


async def put(
    session: AsyncSession, role: str, *, use: bool, create: bool, share: bool, public: bool
) -> RolePermission:
    row = await session.get(RolePermission, role)
    before = None if row is None else _flags(row)
    if row is None:
        row = RolePermission(role=role)
        session.add(row)
    row.use, row.create, row.share, row.public = use, create, share, public
    await session.flush()
    if before != _flags(row):
        details = {"before": before, "after": _flags(row)}
        audit.record(session, "role_permissions.changed", "role", role, role, details)
    return row


def _flags(row: RolePermission) -> dict[str, bool]:
    return {"use": row.use, "create": row.create, "share": row.share, "public": row.public}
