"""API keys: format, storage as SHA-256, the authenticator's errors, cache, revocation
from another process, and batched last-used times (counted with an SQLite trigger)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from agenthost.auth.api_keys import (
    CACHE_TTL,
    LAST_USED_INTERVAL,
    KeyAuthenticator,
    generate_key,
    hash_key,
    looks_like_key,
)
from agenthost.errors import AuthenticationFailed
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.models import ApiKey, User, utcnow
from agenthost.storage.repositories import api_keys, users


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/keys.db")
    await upgrade(database.engine)
    # Count every write of last_used_at, whoever makes it.
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        conn.executescript(
            "CREATE TABLE touches (key_id TEXT);"
            "CREATE TRIGGER count_touches AFTER UPDATE OF last_used_at ON api_keys "
            "BEGIN INSERT INTO touches VALUES (NEW.id); END;"
        )
    yield database
    await database.dispose()


def touches(db: Database) -> int:
    path = db.url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM touches").fetchone()[0])


async def make_key(db: Database, expires_in: timedelta | None = None) -> tuple[str, str, str]:
    """(plain key, key id, user id) for a new user."""
    plain, prefix, key_hash = generate_key()
    async with db.session() as session:
        user = await users.create(session, f"{prefix}@example.com")
        row = await api_keys.create(
            session,
            user_id=user.id,
            name="t",
            prefix=prefix,
            key_hash=key_hash,
            expires_at=utcnow() + expires_in if expires_in is not None else None,
            agent_scope=None,
        )
    return plain, row.id, user.id


def test_keys_are_random_hex_and_stored_as_sha256() -> None:
    made = [generate_key() for _ in range(200)]
    assert len({plain for plain, _, _ in made}) == 200
    for plain, prefix, key_hash in made[:5]:
        assert re.fullmatch(r"sk-[0-9a-f]{64}", plain)
        assert prefix == plain[:8] and len(prefix) == 8
        assert key_hash == hashlib.sha256(plain.encode()).hexdigest() == hash_key(plain)
        assert looks_like_key(plain)
    assert not looks_like_key("sk-" + "g" * 64) and not looks_like_key("sk-abc")
    # Every hex digit shows up across keys: no fixed positions.
    assert set("".join(p[3:] for p, _, _ in made)) == set("0123456789abcdef")


async def test_the_database_never_holds_the_key(db: Database) -> None:
    plain, _, _ = await make_key(db)
    raw = Path(db.url.split("///", 1)[1]).read_bytes()
    wal = Path(db.url.split("///", 1)[1] + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert plain.encode() not in raw and plain[3:].encode() not in raw
    assert hash_key(plain).encode() in raw


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("sk-short", "invalid_api_key"),
        ("Bearer sk-" + "a" * 64, "invalid_api_key"),
        ("sk-" + "a" * 64, "invalid_api_key"),
    ],
)
async def test_missing_malformed_and_unknown_keys(
    db: Database, token: str | None, code: str
) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await KeyAuthenticator(db).authenticate(token)
    assert caught.value.code == code


async def test_expired_key_and_disabled_user(db: Database) -> None:
    keys = KeyAuthenticator(db)
    expired, _, _ = await make_key(db, expires_in=timedelta(seconds=-1))
    with pytest.raises(AuthenticationFailed) as caught:
        await keys.authenticate(expired)
    assert caught.value.code == "expired_api_key"
    plain, _, user_id = await make_key(db, expires_in=timedelta(days=1))
    principal = await keys.authenticate(plain)
    assert principal.user_id == user_id and principal.role == "user"
    async with db.session() as session:
        await session.execute(update(User).where(User.id == user_id).values(disabled=True))
    keys.invalidate(user_id=user_id)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        await keys.authenticate(plain)


async def test_revocation_in_another_process_is_picked_up_by_the_poll(
    db: Database, tmp_path: Path
) -> None:
    keys = KeyAuthenticator(db)
    plain, key_id, _ = await make_key(db)
    await keys.authenticate(plain)  # now cached
    other_process = Database(db.url)  # e.g. `agenthost keys revoke` in a shell
    async with other_process.session() as session:
        await api_keys.revoke(session, key_id)
    await other_process.dispose()
    await keys.authenticate(plain)  # the cache alone would still say yes...
    await keys.sync_revocations()  # ...until the background poll runs
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await keys.authenticate(plain)


async def test_in_process_revocation_takes_effect_at_once(db: Database) -> None:
    keys = KeyAuthenticator(db)
    plain, key_id, _ = await make_key(db)
    await keys.authenticate(plain)
    async with db.session() as session:
        await api_keys.revoke(session, key_id)
    keys.invalidate(key_id=key_id)
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(plain)


async def test_last_used_is_written_at_most_once_a_minute(db: Database) -> None:
    clock = Clock()
    keys = KeyAuthenticator(db, clock=clock)
    plain, key_id, _ = await make_key(db)
    other, _, _ = await make_key(db)
    for _ in range(100):
        await keys.authenticate(plain)
        clock.now += 0.1
    assert touches(db) == 0  # nothing on the request path
    await keys.flush_last_used()
    assert touches(db) == 1
    for _ in range(100):  # the rest of the minute, across more flushes
        await keys.authenticate(plain)
        await keys.flush_last_used()
        clock.now += (LAST_USED_INTERVAL - 11) / 100
    assert touches(db) == 1
    clock.now += 2
    await keys.authenticate(plain)
    await keys.authenticate(other)
    await keys.flush_last_used()
    assert touches(db) == 3  # a new minute for the first key, a first use of the other
    async with db.session() as session:
        rows = await api_keys.list_for_user(session, (await keys.authenticate(plain)).user_id)
    assert rows[0].id == key_id and rows[0].last_used_at is not None


async def test_an_expired_cache_entry_answers_while_it_is_re_read(db: Database) -> None:
    clock = Clock()
    keys = KeyAuthenticator(db, clock=clock)
    plain, _, user_id = await make_key(db)
    await keys.authenticate(plain)
    async with db.session() as session:  # changed in another process: no invalidation here
        await session.execute(update(User).where(User.id == user_id).values(role="admin"))

    clock.now += CACHE_TTL + 1
    stale = await keys.authenticate(plain)  # answered from the cache, re-read started
    await asyncio.sleep(0.2)
    fresh = await keys.authenticate(plain)

    assert stale.role == "user" and fresh.role == "admin"


async def test_a_key_deleted_meanwhile_is_refused_after_the_re_read(db: Database) -> None:
    clock = Clock()
    keys = KeyAuthenticator(db, clock=clock)
    plain, key_id, _ = await make_key(db)
    await keys.authenticate(plain)
    async with db.session() as session:
        await session.execute(delete(ApiKey).where(ApiKey.id == key_id))

    clock.now += CACHE_TTL + 1
    await keys.authenticate(plain)
    await asyncio.sleep(0.2)
    with pytest.raises(AuthenticationFailed, match="Invalid API key"):
        await keys.authenticate(plain)
