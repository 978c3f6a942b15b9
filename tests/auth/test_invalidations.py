"""Invalidations reach the other workers through Redis: two processes' caches (each with
its own bus, on one database and a real Redis) stand in for two workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

from agenthost.auth.api_keys import KeyAuthenticator
from agenthost.auth.invalidations import InvalidationBus, agents_of_user, publish_once
from agenthost.auth.permissions import AgentAccess
from agenthost.errors import AuthenticationFailed, NotFound
from agenthost.settings import RemoteAgentPermissions
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.models import User
from agenthost.storage.repositories import agents, groups
from tests.auth.test_api_keys import make_key

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Worker:
    keys: KeyAuthenticator
    access: AgentAccess
    bus: InvalidationBus


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[tuple[Worker, Worker, Database]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/shared.db")
    await upgrade(db.engine)
    made, tasks = [], []
    for _ in range(2):
        keys, access = KeyAuthenticator(db), AgentAccess(db, RemoteAgentPermissions())
        bus = InvalidationBus(REDIS_URL, keys, access)
        bus.attach()
        tasks.append(asyncio.create_task(bus.run()))
        made.append(Worker(keys, access, bus))
    await asyncio.wait_for(asyncio.gather(*(w.bus.subscribed.wait() for w in made)), 5)
    yield made[0], made[1], db
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for worker in made:
        await worker.bus.aclose()
    await db.dispose()


async def eventually_refused(keys: KeyAuthenticator, plain: str) -> None:
    for _ in range(100):
        try:
            await keys.authenticate(plain)
        except AuthenticationFailed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the other worker still accepts the key")


async def test_a_user_disabled_in_one_worker_is_refused_by_the_other_at_once(
    workers: tuple[Worker, Worker, Database],
) -> None:
    one, other, db = workers
    plain, _, user_id = await make_key(db)
    await one.keys.authenticate(plain)
    await other.keys.authenticate(plain)  # cached there for 30 s
    async with db.session() as session:
        await session.execute(update(User).where(User.id == user_id).values(disabled=True))

    one.keys.invalidate(user_id=user_id)

    await eventually_refused(other.keys, plain)  # within two seconds, not thirty


async def test_an_agent_unshared_in_one_worker_disappears_from_the_other(
    workers: tuple[Worker, Worker, Database],
) -> None:
    one, other, db = workers
    _, _, owner_id = await make_key(db)
    plain, _, user_id = await make_key(db)
    async with db.session() as session:
        agent = await agents.create(
            session, owner_id=owner_id, name="shared", provider="p", model="m"
        )
        await agents.add_grant(session, agent.id, "user", user_id)
    principal = await other.keys.authenticate(plain)
    assert (await other.access.resolve(principal, agent.id)).id == agent.id  # now cached
    async with db.session() as session:
        await agents.remove_grant(session, agent.id, "user", user_id)

    one.access.invalidate(agent.id)

    for _ in range(100):
        try:
            await other.access.resolve(principal, agent.id)
        except NotFound:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the other worker still resolves the unshared agent")


async def test_a_membership_change_published_from_the_cli_reaches_every_worker(
    workers: tuple[Worker, Worker, Database],
) -> None:
    one, other, db = workers
    _, _, owner_id = await make_key(db)
    plain, _, user_id = await make_key(db)
    async with db.session() as session:
        group = await groups.create(session, f"team {user_id}")
        agent = await agents.create(
            session, owner_id=owner_id, name="for the team", provider="p", model="m"
        )
        await agents.add_grant(session, agent.id, "group", group.id)
    principal = await one.keys.authenticate(plain)
    for worker in (one, other):  # "not callable" cached in both
        with pytest.raises(NotFound):
            await worker.access.resolve(principal, agent.id)
    async with db.session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        await groups.add_member(session, group, user)

    await publish_once(REDIS_URL, [agents_of_user(user_id)])  # as `groups add` does

    for worker in (one, other):
        for _ in range(100):
            with contextlib.suppress(NotFound):
                await worker.access.resolve(principal, agent.id)
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("a worker still refuses the new member")
