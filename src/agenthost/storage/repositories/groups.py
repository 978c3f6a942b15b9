"""Groups of users, kept by admins (`local`) or by the identity provider (`oidc`).

A group's name is 1–100 characters: letters and digits of any script, spaces and
`. _ - /`, not starting or ending with a space (NFC-normalised first; case matters). Agents
are shared with a group by its id (`AgentGrant` kind `group`), so renaming would not break
a share; deleting a group deletes its grants and memberships.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost import ids
from agenthost.errors import InvalidRequest, NotFound
from agenthost.storage.models import AgentGrant, Group, GroupMember, User, utcnow
from agenthost.storage.repositories import audit

log = logging.getLogger(__name__)

MAX_NAME = 100
_PUNCTUATION = frozenset(" ._-/")
LOCAL, OIDC = "local", "oidc"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a group, or None (checked after NFC normalisation)."""
    if not 1 <= len(name) <= MAX_NAME:
        return f"must have 1 to {MAX_NAME} characters"
    if name != name.strip(" "):
        return "must not start or end with a space"
    if any(not (c.isalnum() or c in _PUNCTUATION) for c in name):
        return "may hold only letters, digits, spaces and . _ - /"
    return None


def check_name(name: str) -> str:
    """`name` normalised (NFC), or `InvalidRequest` saying what is wrong with it."""
    normal = unicodedata.normalize("NFC", name)
    found = name_problem(normal)
    if found is not None:
        shown = normal if len(normal) <= MAX_NAME else normal[:MAX_NAME] + "…"
        raise InvalidRequest(f"group name {shown!r} {found}", code="invalid_group_name")
    return normal


@dataclass(slots=True, frozen=True)
class GroupView:
    """A group with its members' emails, for listings."""

    id: str
    name: str
    source: str
    members: tuple[tuple[str, str], ...]  # (user id, email), by email


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def _insert_group(session: AsyncSession, name: str, source: str) -> Group | None:
    """The new group, or None if one of that name exists (also when created concurrently)."""
    group_id = ids.group_id()
    statement = (
        _insert(session)(Group)
        .values(id=group_id, name=name, source=source, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = await session.execute(statement)
    if not getattr(result, "rowcount", 0):
        return None
    audit.record(session, "group.created", "group", group_id, name, {"source": source})
    return await session.get(Group, group_id)


async def create(session: AsyncSession, name: str) -> Group:
    """A new local group; `InvalidRequest` for a bad or taken name."""
    name = check_name(name)
    group = await _insert_group(session, name, LOCAL)
    if group is None:
        raise InvalidRequest(f"group {name!r} already exists", code="group_exists")
    return group


async def get(session: AsyncSession, group_id: str) -> Group | None:
    return await session.get(Group, group_id)


async def get_by_name(session: AsyncSession, name: str) -> Group | None:
    normal = unicodedata.normalize("NFC", name)
    result = await session.execute(select(Group).where(Group.name == normal))
    return result.scalar_one_or_none()


async def find(session: AsyncSession, name: str) -> Group:
    """The group called `name`, or `NotFound`."""
    group = await get_by_name(session, name)
    if group is None:
        raise NotFound(f"no group {name!r}", code="group_not_found")
    return group


async def names_by_id(session: AsyncSession) -> dict[str, str]:
    return {row.id: row.name for row in await session.execute(select(Group.id, Group.name))}


async def list_all(session: AsyncSession) -> list[GroupView]:
    """Every group by name, with its members."""
    groups = list((await session.execute(select(Group).order_by(Group.name))).scalars())
    rows = await session.execute(
        select(GroupMember.group_id, User.id, User.email)
        .join(User, User.id == GroupMember.user_id)
        .order_by(User.email)
    )
    members: dict[str, list[tuple[str, str]]] = {}
    for group_id, user_id, email in rows:
        members.setdefault(group_id, []).append((user_id, email))
    return [GroupView(g.id, g.name, g.source, tuple(members.get(g.id, ()))) for g in groups]


def _require_local(group: Group) -> None:
    if group.source != LOCAL:
        raise InvalidRequest(
            f"group {group.name!r} is kept by the identity provider: its members change "
            "when they sign in",
            code="group_not_local",
        )


async def add_member(session: AsyncSession, group: Group, user: User) -> bool:
    """Add `user` to a local group; False if they were in it already."""
    _require_local(group)
    return await _add(session, group, user.id, user.email)


async def remove_member(session: AsyncSession, group: Group, user: User) -> bool:
    """Take `user` out of a local group; False if they were not in it."""
    _require_local(group)
    return await _remove(session, group, user.id, user.email)


async def _add(session: AsyncSession, group: Group, user_id: str, email: str) -> bool:
    statement = (
        _insert(session)(GroupMember)
        .values(group_id=group.id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["group_id", "user_id"])
    )
    added = bool(getattr(await session.execute(statement), "rowcount", 0))
    if added:
        details = {"user_id": user_id, "email": email, "source": group.source}
        audit.record(session, "group.member_added", "group", group.id, group.name, details)
    return added


async def _remove(session: AsyncSession, group: Group, user_id: str, email: str) -> bool:
    result = await session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.user_id == user_id)
    )
    removed = bool(getattr(result, "rowcount", 0))
    if removed:
        details = {"user_id": user_id, "email": email, "source": group.source}
        audit.record(session, "group.member_removed", "group", group.id, group.name, details)
    return removed


async def member_ids(session: AsyncSession, group_id: str) -> list[str]:
    result = await session.execute(
        select(GroupMember.user_id).where(GroupMember.group_id == group_id)
    )
    return list(result.scalars())


async def delete_group(session: AsyncSession, group: Group) -> list[str]:
    """Delete a group, its memberships and every agent grant to it; returns the ids of
    the agents that were shared with it."""
    grants = await session.execute(
        select(AgentGrant.agent_id).where(
            AgentGrant.kind == "group", AgentGrant.subject == group.id
        )
    )
    agent_ids = sorted(set(grants.scalars()))
    members = len(await member_ids(session, group.id))
    await session.execute(
        delete(AgentGrant).where(AgentGrant.kind == "group", AgentGrant.subject == group.id)
    )
    await session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    await session.execute(delete(Group).where(Group.id == group.id))
    details = {"source": group.source, "members": members, "unshared_agents": agent_ids}
    audit.record(session, "group.deleted", "group", group.id, group.name, details)
    return agent_ids


async def sync_oidc_groups(session: AsyncSession, user_id: str, names: Iterable[str]) -> bool:
    """Make the user's memberships of identity-provider groups exactly `names`.

    Missing groups are created with source `oidc`. Only `oidc` groups are touched: a name
    that belongs to a local group is skipped (admins keep those), and so is a name that
    cannot name a group (logged). Returns whether any membership changed: the caller
    then drops the user's cached agent access (`AgentAccess.invalidate(user_id=...)`)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}", code="user_not_found")
    wanted: dict[str, Group] = {}
    for raw in dict.fromkeys(names):
        try:
            name = check_name(raw)
        except InvalidRequest as exc:
            log.warning("identity provider group skipped: %s", exc.message)
            continue
        group = await get_by_name(session, name) or await _ensure_oidc(session, name)
        if group.source == OIDC:
            wanted[group.id] = group
    current = await session.execute(
        select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user_id, Group.source == OIDC)
    )
    changed = False
    for group in current.scalars():
        if group.id not in wanted:
            changed = await _remove(session, group, user_id, user.email) or changed
    for group in wanted.values():
        changed = await _add(session, group, user_id, user.email) or changed
    return changed


async def _ensure_oidc(session: AsyncSession, name: str) -> Group:
    created = await _insert_group(session, name, OIDC)
    if created is not None:
        return created
    found = await get_by_name(session, name)  # made by a concurrent sign-in
    assert found is not None
    return found
