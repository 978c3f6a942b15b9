"""Adding a member to a group that another admin is deleting at that moment (PostgreSQL:
the insert waits on the deleting transaction's lock, then finds the group gone). It was
a 500 (a foreign-key violation); it is a 404 page saying the group was deleted."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.billing.conftest import admin_sql, reachable
from tests.support.server import Server, running_server
from tests.web.conftest import csrf_of, sign_in

ADMIN = ("race-admin@example.com", "race-admin-password")


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    if not reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"agenthost_race_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(f"CREATE DATABASE {name}"))
    folder: Path = tmp_path_factory.mktemp("group-race")
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        with running_server(folder, database_url=url) as server:
            yield server, name
    finally:
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _delete_group_slowly(database: str, group: str, started: threading.Event) -> None:
    """Delete the group in a transaction that stays open for a second."""
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
    try:
        async with connection.transaction():
            await connection.execute("DELETE FROM groups WHERE name = $1", group)
            started.set()
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


@pytest.mark.postgres
def test_adding_a_member_to_a_group_being_deleted_is_a_404(pg: tuple[Server, str]) -> None:
    server, database = pg
    server.cli("users", "add", ADMIN[0], "--role", "admin", "--password-stdin", input=ADMIN[1])
    server.add_user("member@example.com")
    server.cli("groups", "create", "racing")
    group_id = asyncio.run(_group_id(database, "racing"))
    started = threading.Event()
    deleting = threading.Thread(
        target=lambda: asyncio.run(_delete_group_slowly(database, "racing", started))
    )
    with httpx.Client(base_url=server.url, timeout=30) as admin:
        assert sign_in(admin, *ADMIN).status_code == 303
        token = csrf_of(admin.get("/admin/groups").text)
        deleting.start()
        assert started.wait(10)
        form = {"csrf_token": token, "email": "member@example.com"}
        reply = admin.post(f"/admin/groups/{group_id}/members", data=form)
    deleting.join()
    assert reply.status_code == 404, reply.text[:500]
    assert "deleted meanwhile" in reply.text


async def _group_id(database: str, name: str) -> str:
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
    try:
        found: str = await connection.fetchval("SELECT id FROM groups WHERE name = $1", name)
        return found
    finally:
        await connection.close()
