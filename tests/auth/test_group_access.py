"""Calls through a group grant follow membership: the per-process cache of who may call
what holds a membership change for at most `AGENT_CACHE_TTL` seconds with no invalidation
at all, and an invalidation for one user drops that user's entries only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agenthost.auth.permissions import AGENT_CACHE_TTL, AgentAccess
from agenthost.auth.principal import Principal
from agenthost.errors import NotFound
from agenthost.settings import RemoteAgentPermissions
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.models import User
from agenthost.storage.repositories import agents, groups, users
from tests.auth.test_api_keys import Clock


@dataclass
class Setup:
    db: Database
    access: AgentAccess
    clock: Clock
    agent_id: str
    group_name: str


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/groups.db")
    await upgrade(db.engine)
    async with db.session() as session:
        owner = await users.create(session, "owner@example.com")
        group = await groups.create(session, "readers")
        agent = await agents.create(session, owner_id=owner.id, name="g", provider="p", model="m")
        await agents.add_grant(session, agent.id, "group", group.id)
    clock = Clock()
    yield Setup(db, AgentAccess(db, RemoteAgentPermissions(), clock), clock, agent.id, "readers")
    await db.dispose()


async def new_principal(db: Database, email: str) -> Principal:
    async with db.session() as session:
        user = await users.create(session, email)
    return Principal(user_id=user.id, email=email, role="user")


async def set_member(db: Database, name: str, principal: Principal, member: bool) -> None:
    async with db.session() as session:
        group = await groups.find(session, name)
        user = await session.get(User, principal.user_id)
        assert user is not None
        if member:
            await groups.add_member(session, group, user)
        else:
            await groups.remove_member(session, group, user)


async def may_call(s: Setup, principal: Principal) -> bool:
    try:
        await s.access.resolve(principal, s.agent_id)
    except NotFound:
        return False
    return True


async def listed(s: Setup, principal: Principal) -> bool:
    return s.agent_id in {a.id for a in await s.access.list_callable(principal)}


async def test_membership_reaches_a_cached_worker_within_the_bound_without_invalidation(
    setup: Setup,
) -> None:
    reader = await new_principal(setup.db, "reader@example.com")
    assert not await may_call(setup, reader)  # "not callable" is now cached

    await set_member(setup.db, "readers", reader, True)
    assert await listed(setup, reader)  # the list reads the database
    setup.clock.now += AGENT_CACHE_TTL * 0.4
    assert not await may_call(setup, reader)  # still the cached answer
    setup.clock.now += AGENT_CACHE_TTL * 0.6
    assert await may_call(setup, reader)  # never served once TTL old

    await set_member(setup.db, "readers", reader, False)
    assert not await listed(setup, reader)
    setup.clock.now += AGENT_CACHE_TTL * 0.4
    assert await may_call(setup, reader)
    setup.clock.now += AGENT_CACHE_TTL * 0.6
    assert not await may_call(setup, reader)


async def test_a_hot_entry_is_re_read_in_the_background_before_it_expires(setup: Setup) -> None:
    reader = await new_principal(setup.db, "hot@example.com")
    await set_member(setup.db, "readers", reader, True)
    assert await may_call(setup, reader)
    await set_member(setup.db, "readers", reader, False)
    setup.clock.now += AGENT_CACHE_TTL * 0.6
    assert await may_call(setup, reader)  # answered from the cache, re-read started
    for _ in range(100):  # the re-read lands without anyone waiting for it
        await asyncio.sleep(0.01)
        if not await may_call(setup, reader):
            return
    raise AssertionError("the entry was not re-read in the background")


async def test_invalidating_a_user_drops_that_users_entries_only(setup: Setup) -> None:
    one = await new_principal(setup.db, "one@example.com")
    two = await new_principal(setup.db, "two@example.com")
    assert not await may_call(setup, one) and not await may_call(setup, two)
    await set_member(setup.db, "readers", one, True)
    await set_member(setup.db, "readers", two, True)

    setup.access.invalidate(user_id=one.user_id)

    assert await may_call(setup, one)
    assert not await may_call(setup, two)  # cached, and the clock has not moved
