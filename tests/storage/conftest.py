"""A migrated database per backend: SQLite always, PostgreSQL when 127.0.0.1:5432 answers.

PostgreSQL gets a fresh database per run (`agenthost_foundation_<random>`), dropped after.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _postgres_admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=3)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("storage")
        database = Database(f"sqlite+aiosqlite:///{folder}/agenthost.db")
        await upgrade(database.engine)
        yield database
        await database.dispose()
        return
    name = f"agenthost_foundation_{secrets.token_hex(4)}"
    try:
        await _postgres_admin(f'CREATE DATABASE "{name}"')
    except (OSError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc}); ran the SQLite half")
    database = Database(POSTGRES_URL.format(name=name))
    try:
        await upgrade(database.engine)
        yield database
    finally:
        await database.dispose()
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
