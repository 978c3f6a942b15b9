"""Migrations and repositories on both backends (SQLite, and PostgreSQL when present)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from agenthost.storage.database import Database
from agenthost.storage.migrate import alembic_config
from agenthost.storage.models import Base, Transaction, utcnow
from agenthost.storage.repositories import agents, api_keys, balances, usage, users


def email() -> str:
    return f"u{secrets.token_hex(4)}@example.com"


async def new_user(db: Database, role: str = "user") -> str:
    async with db.session() as session:
        return (await users.create(session, email(), role=role)).id


async def test_migration_reaches_head_and_matches_the_models(db: Database) -> None:
    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()

    def check(connection: Any) -> tuple[str | None, list[Any], set[str]]:
        context = MigrationContext.configure(connection)
        tables = set(inspect(connection).get_table_names())
        return context.get_current_revision(), compare_metadata(context, Base.metadata), tables

    async with db.engine.connect() as connection:
        revision, drift, tables = await connection.run_sync(check)
    assert revision == head
    assert set(Base.metadata.tables) <= tables
    assert drift == [], f"models and migrations disagree: {drift}"


async def test_users_are_found_by_normalised_email_and_unique(db: Database) -> None:
    address = email()
    async with db.session() as session:
        created = await users.create(session, f"  {address.upper()} ", role="admin")
    async with db.session() as session:
        found = await users.get_by_email(session, address)
        assert found is not None and found.id == created.id and found.role == "admin"
        assert (await users.get(session, created.id)) is not None
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await users.create(session, address)


async def test_api_keys_store_hash_prefix_and_revocation(db: Database) -> None:
    user_id = await new_user(db)
    key_hash = secrets.token_hex(32)
    async with db.session() as session:
        row = await api_keys.create(
            session,
            user_id=user_id,
            name="ci",
            prefix="sk-abcde",
            key_hash=key_hash,
            expires_at=utcnow() + timedelta(days=1),
            agent_scope=["agent_a"],
        )
    before = utcnow() - timedelta(seconds=1)
    async with db.session() as session:
        found = await api_keys.find_by_hash(session, key_hash)
        assert found is not None and found[0].id == row.id and found[1].id == user_id
        assert found[0].agent_scope == ["agent_a"]
        assert await api_keys.find_by_hash(session, secrets.token_hex(32)) is None
        first = await api_keys.revoke(session, row.id)
        assert first is not None and first.revoked_at is not None
    async with db.session() as session:
        again = await api_keys.revoke(session, row.id)
        assert again is not None and again.revoked_at == first.revoked_at  # revoked once
        assert row.id in await api_keys.revoked_since(session, before)
        assert row.id not in await api_keys.revoked_since(session, utcnow() + timedelta(seconds=5))
        assert await api_keys.revoke(session, "key_missing") is None
        when = utcnow()
        await api_keys.touch_many(session, {row.id: when})
    async with db.session() as session:
        listed = await api_keys.list_for_user(session, user_id)
    assert [k.id for k in listed] == [row.id]
    used = listed[0].last_used_at
    # Aware UTC datetimes on both backends, so they compare with utcnow().
    assert used is not None and used.tzinfo is not None
    assert abs(used - when) < timedelta(seconds=1)


async def test_visibility_owner_user_grant_role_grant_and_public(db: Database) -> None:
    owner, friend, stranger = [await new_user(db) for _ in range(3)]
    admin = await new_user(db, role="admin")
    async with db.session() as session:
        private = await agents.create(session, owner_id=owner, name="p", provider="x", model="m")
        for_friend = await agents.create(session, owner_id=owner, name="f", provider="x", model="m")
        for_admins = await agents.create(session, owner_id=owner, name="a", provider="x", model="m")
        public = await agents.create(session, owner_id=owner, name="pub", provider="x", model="m")
        await agents.add_grant(session, for_friend.id, "user", friend)
        await agents.add_grant(session, for_friend.id, "user", friend)  # idempotent
        await agents.add_grant(session, for_admins.id, "role", "admin")
        await agents.add_grant(session, public.id, "public", "*")

    async def visible(user_id: str, role: str) -> set[str]:
        async with db.session() as session:
            listed = {a.id for a in await agents.list_callable(session, user_id, role)}
            ours = {private.id, for_friend.id, for_admins.id, public.id}
            for agent_id in ours:
                single = await agents.get_callable(session, agent_id, user_id, role)
                assert (single is not None) == (agent_id in listed)
            return listed & ours

    assert await visible(owner, "user") == {private.id, for_friend.id, for_admins.id, public.id}
    assert await visible(friend, "user") == {for_friend.id, public.id}
    assert await visible(admin, "admin") == {for_admins.id, public.id}
    assert await visible(stranger, "user") == {public.id}
    async with db.session() as session:
        assert len(await agents.list_grants(session, for_friend.id)) == 1
        await agents.remove_grant(session, for_friend.id, "user", friend)
    assert await visible(friend, "user") == {public.id}
    async with db.session() as session:
        await agents.delete_agent(session, public.id)
    assert await visible(stranger, "user") == set()


async def test_balance_ensure_is_idempotent_and_apply_is_atomic(db: Database) -> None:
    user_id = await new_user(db)
    async with db.session() as session:
        await balances.ensure(session, user_id, 1000)
    async with db.session() as session:
        await balances.apply(session, Transaction(user_id=user_id, kind="grant", credits=-300))
        await balances.ensure(session, user_id, 1000)  # must not reset the balance
        assert await balances.get_credits(session, user_id) == 700

    async def charge(amount: int) -> None:
        async with db.session() as session:
            await balances.apply(
                session, Transaction(user_id=user_id, kind="usage", credits=amount)
            )

    await asyncio.gather(*(charge(-7) for _ in range(40)), *(charge(3) for _ in range(20)))
    async with db.session() as session:
        assert await balances.get_credits(session, user_id) == 700 - 40 * 7 + 20 * 3
        rows = await usage.list_transactions(session, user_id, limit=100)
    assert len(rows) == 61 and sum(r.credits for r in rows) == -300 - 280 + 60


async def test_sqlite_runs_in_wal_mode(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    async with db.engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
    assert mode == "wal"
