"""Servers and tenants for the billing tests.

Tenants are written straight into the server's database with the storage repositories
(no CLI round trip per user): a user without any balance row, a key and agents, the way
a user looks when it first arrives through the API.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from agenthost.auth.api_keys import generate_key
from agenthost.storage.database import Database
from agenthost.storage.repositories import agents, api_keys, users
from tests.support.server import Server, running_server

PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
START_BALANCE = 10_000_000

# Prices (USD per 1M tokens) that make credits easy to read: 1 credit per input
# token, 1000 per output token for the scripted model.
PRICING = {
    "scripted-model": {"input": 1, "output": 1000},
    "gpt-4o-mini": {"input": 100, "output": 400, "cache_read": 10},
    "claude-sonnet-4": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75},
}
# An Anthropic-style usage as our mapping reports it: input includes both cache kinds.
ANTHROPIC_USAGE = {
    "input_tokens": 1000,
    "cache_write_tokens": 300,
    "cache_read_tokens": 500,
    "output_tokens": 40,
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def billing_config(**extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "balance": {"start_balance": START_BALANCE},
        "pricing": PRICING,
        "providers": {
            "anthropic_like": {"type": "scripted", "script": {"usage": ANTHROPIC_USAGE}},
        },
    }
    config.update(extra)
    return config


@dataclass
class Tenant:
    user_id: str
    email: str
    key: str
    key_id: str
    scripted_agent: str
    fake_agent: str
    anthropic_agent: str


@dataclass
class BillingServer:
    server: Server
    db: Database

    @property
    def api(self) -> str:
        return self.server.api

    async def tenant(self) -> Tenant:
        """A fresh user (no balance row yet), one key and three agents."""
        email = f"u{secrets.token_hex(5)}@example.com"
        plain, prefix, key_hash = generate_key()
        async with self.db.session() as session:
            user = await users.create(session, email)
            key = await api_keys.create(
                session,
                user_id=user.id,
                name="test",
                prefix=prefix,
                key_hash=key_hash,
                expires_at=None,
                agent_scope=None,
            )
            made = [
                await agents.create(
                    session, owner_id=user.id, name="a", provider=provider, model=model
                )
                for provider, model in (
                    ("scripted", "scripted-model"),
                    ("fake", "gpt-4o-mini"),
                    ("anthropic_like", "claude-sonnet-4-5"),
                )
            ]
        return Tenant(user.id, email, plain, key.id, *(agent.id for agent in made))

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.session() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.session() as session:
            return list((await session.execute(text(sql), params)).mappings())

    async def balance(self, user_id: str) -> int | None:
        value = await self.scalar("SELECT credits FROM balances WHERE user_id = :u", u=user_id)
        return None if value is None else int(value)

    async def set_balance(self, tenant: Tenant, credits: int) -> None:
        """Make the balance exist at `credits` (via a grant, so the ledger stays whole)."""
        async with httpx.AsyncClient() as client:  # the API creates the balance row
            response = await client.get(f"{self.api}/usage", headers=auth_of(tenant.key))
            assert response.status_code == 200, response.text
        current = await self.balance(tenant.user_id)
        assert current is not None
        async with self.db.session() as session:
            await session.execute(
                text(
                    "INSERT INTO transactions (user_id, kind, credits, input_tokens, "
                    "cache_write_tokens, cache_read_tokens, output_tokens, reasoning_tokens, "
                    "created_at) VALUES (:u, 'grant', :c, 0, 0, 0, 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"u": tenant.user_id, "c": credits - current},
            )
            await session.execute(
                text("UPDATE balances SET credits = credits + :c WHERE user_id = :u"),
                {"u": tenant.user_id, "c": credits - current},
            )

    async def transactions_sum(self, user_id: str) -> int:
        value = await self.scalar(
            "SELECT COALESCE(SUM(credits), 0) FROM transactions WHERE user_id = :u", u=user_id
        )
        return int(value)


def auth_of(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
async def sqlite_billing(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str
) -> AsyncIterator[BillingServer]:
    folder = tmp_path_factory.mktemp("billing")
    with running_server(folder, upstream_url, billing_config()) as server:
        db = Database(f"sqlite+aiosqlite:///{folder}/agenthost.db")
        try:
            yield BillingServer(server, db)
        finally:
            await db.dispose()


async def admin_sql(sql: str) -> None:
    engine = Database(PG_ADMIN_URL).engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database `agenthost_billing_<random>`, dropped afterwards."""
    if not reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"agenthost_billing_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
async def postgres_billing(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str, postgres_url: str
) -> AsyncIterator[BillingServer]:
    """Two `agenthost serve` workers on PostgreSQL and Redis."""
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    folder: Path = tmp_path_factory.mktemp("billing_pg")
    limits = {"per_key": {"requests_per_minute": SHARED_RPM}}
    config = billing_config(redis_url=REDIS_URL, limits=limits)
    with running_server(folder, upstream_url, config, database_url=postgres_url, start=False) as s:
        s.start(workers=2)
        db = Database(postgres_url)
        try:
            yield BillingServer(s, db)
        finally:
            await db.dispose()


SHARED_RPM = 210
