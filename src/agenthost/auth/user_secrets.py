"""Per-user secrets: credentials a user keeps for MCP servers (`{secret.NAME}` in headers).

Values are sealed at rest with a key derived from the server secret (see sealing.py);
the sealed payload names its user and secret, so a row copied to another user or name
does not open. Plain values exist only in memory: they are never logged, listed or
shown back. Reads are cached per user for `CACHE_TTL` seconds; a change made through
this object drops the user's entry at once, one made in another process (the CLI,
another worker) applies when the entry expires.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from cryptography.fernet import InvalidToken

from agenthost.errors import InvalidRequest
from agenthost.sealing import derived_fernet
from agenthost.storage.database import Database
from agenthost.storage.repositories import user_secrets as secret_repo

log = logging.getLogger(__name__)

CACHE_TTL = 5.0
MAX_CACHED_USERS = 4096
MAX_VALUE_CHARS = 4096
_PURPOSE = b"agenthost user secrets v1"
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
# Values end up in HTTP header values: printable ASCII only (no CR/LF injection).
_VALUE = re.compile(r"[\x20-\x7e]+")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            "A secret name has 1 to 64 letters, digits or underscores.",
            code="invalid_secret_name",
            param="name",
        )
    return name


def check_value(value: str) -> str:
    """The value without surrounding whitespace (pasted tokens often carry some, and an
    HTTP client refuses such a header value, quoting it in its error)."""
    # The message never repeats the value: it is a credential.
    value = value.strip()
    if not value or len(value) > MAX_VALUE_CHARS or not _VALUE.fullmatch(value):
        raise InvalidRequest(
            f"A secret value has 1 to {MAX_VALUE_CHARS} printable ASCII characters "
            "(no line breaks).",
            code="invalid_secret_value",
            param="value",
        )
    return value


_PROVIDER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _check_provider_name(name: str) -> str:
    if not _PROVIDER_NAME.fullmatch(name):
        raise InvalidRequest("No such provider.", code="invalid_provider", param="provider")
    return name


class SecretSealer:
    """Seals one user's secret value so that it opens only for that user and name."""

    def __init__(self, server_secret: bytes, purpose: bytes = _PURPOSE) -> None:
        self._fernet = derived_fernet(server_secret, purpose)

    def seal(self, user_id: str, name: str, value: str) -> str:
        payload = orjson.dumps({"u": user_id, "n": name, "v": value})
        return self._fernet.encrypt(payload).decode()

    def open(self, user_id: str, name: str, sealed: str) -> str | None:
        """The value, or None if the token is not ours (rotated secret) or not theirs."""
        try:
            payload = orjson.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("u") != user_id:
            return None
        value = payload.get("v")
        return value if payload.get("n") == name and isinstance(value, str) else None


@dataclass(slots=True, frozen=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class UserSecrets:
    """Stores, lists and (for runs) opens users' secrets of one kind: "secret" (values
    for MCP headers) or "provider_key" (keys for user-provided providers, by provider
    name; sealed with a key of their own purpose)."""

    def __init__(
        self,
        db: Database,
        server_secret: bytes,
        clock: Callable[[], float] = time.monotonic,
        *,
        kind: str = "secret",
    ) -> None:
        self._db = db
        self._kind = kind
        purpose = _PURPOSE if kind == "secret" else b"agenthost user secrets v1 " + kind.encode()
        self._sealer = SecretSealer(server_secret, purpose)
        self._check_name = check_name if kind == "secret" else _check_provider_name
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._changes = 0  # a read that overlapped a change must not be cached

    async def put(self, user_id: str, name: str, value: str) -> None:
        """Set or replace a secret (name and value are checked first)."""
        sealed = self._sealer.seal(user_id, self._check_name(name), check_value(value))
        async with self._db.session() as session:
            await secret_repo.put(session, user_id, name, sealed, self._kind)
        self.invalidate(user_id)

    async def delete(self, user_id: str, name: str) -> bool:
        async with self._db.session() as session:
            deleted = await secret_repo.delete(session, user_id, name, self._kind)
        self.invalidate(user_id)
        return deleted

    async def describe(self, user_id: str) -> list[SecretInfo]:
        """Names and dates of the user's secrets, by name."""
        async with self._db.session() as session:
            rows = await secret_repo.list_for_user(session, user_id, self._kind)
        return [SecretInfo(r.name, r.created_at, r.updated_at) for r in rows]

    async def values(self, user_id: str) -> dict[str, str]:
        """The user's secrets by name (cached briefly). Rows that no longer open, such
        as after the server secret was rotated, count as not set."""
        now, changes = self._clock(), self._changes
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < CACHE_TTL:
            return dict(cached[1])
        async with self._db.session() as session:
            rows = await secret_repo.list_for_user(session, user_id, self._kind)
        opened: dict[str, str] = {}
        for row in rows:
            value = self._sealer.open(user_id, row.name, row.sealed_value)
            if value is None:
                log.warning(
                    "secret %s of user %s cannot be opened; set it again", row.name, user_id
                )
            else:
                opened[row.name] = value
        if changes == self._changes:
            self._remember(user_id, now, opened)
        return dict(opened)

    def _remember(self, user_id: str, now: float, opened: dict[str, str]) -> None:
        if len(self._cache) >= MAX_CACHED_USERS:
            self._cache = {u: e for u, e in self._cache.items() if now - e[0] < CACHE_TTL}
            if len(self._cache) >= MAX_CACHED_USERS:
                self._cache.clear()
        self._cache[user_id] = (now, opened)

    def invalidate(self, user_id: str) -> None:
        self._changes += 1
        self._cache.pop(user_id, None)
