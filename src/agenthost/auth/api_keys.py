"""API keys: `sk-` + 64 hex characters, stored as SHA-256 with an 8-character prefix.

Lookups are cached in-process for `CACHE_TTL`, then re-read in the background while the
cached entry still answers. A revocation in this process drops the entry at once
(`invalidate`); one made elsewhere (the CLI, another worker or host) is picked up by a
background poll of recently revoked keys, so a revoked key is refused everywhere within
`REVOCATION_POLL` seconds plus one query. Other changes made in another process (a
disabled user, a new role) apply when the cached entry is re-read.
Last-used times are batched: at most one write per key per minute, flushed in the
background, never on the hot path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from agenthost.auth.principal import Principal
from agenthost.errors import AuthenticationFailed
from agenthost.single_flight import SingleFlight
from agenthost.storage.database import Database
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import api_keys as key_repo

log = logging.getLogger(__name__)

KEY_PREFIX = "sk-"
LAST_USED_INTERVAL = 60.0
LAST_USED_FLUSH = 5.0
CACHE_TTL = 30.0
REVOCATION_POLL = 2.0
# Revocation times come from other hosts' clocks: look back far enough to absorb skew.
REVOCATION_LOOKBACK = timedelta(seconds=120)


def generate_key() -> tuple[str, str, str]:
    """A new key as (plain text, display prefix, SHA-256 hex)."""
    plain = KEY_PREFIX + secrets.token_hex(32)
    return plain, plain[:8], hash_key(plain)


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + "[0-9a-f]{64}")


def looks_like_key(plain: str) -> bool:
    # One compiled match: a tenth of the cost of a per-character check, on every request.
    return _KEY_SHAPE.fullmatch(plain) is not None


@dataclass(slots=True, frozen=True)
class _CachedKey:
    key_hash: str
    principal: Principal
    expires_at: datetime | None
    revoked: bool
    disabled: bool
    cached_at: float


class KeyAuthenticator:
    """Turns a bearer token into a `Principal`, or raises `AuthenticationFailed`."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, _CachedKey] = {}
        self.announce: Callable[[dict[str, Any]], None] | None = None  # see invalidations.py
        self.on_user_dropped: Callable[[str | None], None] | None = None  # see callers.py
        self._loads: SingleFlight[str, _CachedKey] = SingleFlight()
        self._last_recorded: dict[str, float] = {}
        self._pending_used: dict[str, datetime] = {}
        self._revocations_seen_at = utcnow()

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationFailed(
                "Missing API key: send 'Authorization: Bearer sk-…'.", code="missing_api_key"
            )
        if not looks_like_key(token):
            raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        key_hash = hash_key(token)
        cached = self._cache.get(key_hash)
        age = self._clock() - cached.cached_at if cached is not None else None
        load = partial(self._load, key_hash)
        entry = await self._loads.cached(key_hash, load, CACHE_TTL, age, cached)
        self._check(entry)
        self._note_used(entry.principal.key_id or "")
        return entry.principal

    async def _load(self, key_hash: str) -> _CachedKey:
        async with self._db.session() as session:
            found = await key_repo.find_by_hash(session, key_hash)
        # The index found the row by hash; compare again in constant time anyway.
        if found is None or not hmac.compare_digest(found[0].key_hash, key_hash):
            self._cache.pop(key_hash, None)  # deleted meanwhile: no longer served
            raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        key, user = found
        entry = _CachedKey(
            key_hash=key_hash,
            principal=Principal(
                user_id=user.id,
                email=user.email,
                role=user.role,
                key_id=key.id,
                agent_scope=tuple(key.agent_scope) if key.agent_scope is not None else None,
                key_max_credits=key.max_credits,
                key_budget_period=key.budget_period,
            ),
            expires_at=key.expires_at,
            revoked=key.revoked_at is not None,
            disabled=user.disabled,
            cached_at=self._clock(),
        )
        self._cache[key_hash] = entry
        return entry

    @staticmethod
    def _check(entry: _CachedKey) -> None:
        if entry.revoked:
            raise AuthenticationFailed("This API key has been revoked.", code="invalid_api_key")
        if entry.disabled:
            raise AuthenticationFailed("This API key's user is disabled.", code="invalid_api_key")
        expires = entry.expires_at
        if expires is not None:
            if expires.tzinfo is None:  # SQLite hands back naive UTC datetimes
                expires = expires.replace(tzinfo=utcnow().tzinfo)
            if expires <= utcnow():
                raise AuthenticationFailed("This API key has expired.", code="expired_api_key")

    def _note_used(self, key_id: str) -> None:
        now = self._clock()
        if now - self._last_recorded.get(key_id, -LAST_USED_INTERVAL) >= LAST_USED_INTERVAL:
            self._last_recorded[key_id] = now
            self._pending_used[key_id] = utcnow()

    def invalidate(self, key_id: str | None = None, user_id: str | None = None) -> None:
        """Drop cached entries for a key or all of a user's keys (revoke, disable, role),
        here and (with an invalidation bus) in every other process."""
        self.drop(key_id, user_id)
        if self.announce is not None:
            self.announce({"keys": {"key_id": key_id, "user_id": user_id}})

    def drop(self, key_id: str | None = None, user_id: str | None = None) -> None:
        """Drop cached entries for a key or all of a user's keys, in this process."""
        if user_id and self.on_user_dropped is not None:
            self.on_user_dropped(user_id)
        for key_hash, entry in list(self._cache.items()):
            p = entry.principal
            if (key_id and p.key_id == key_id) or (user_id and p.user_id == user_id):
                del self._cache[key_hash]

    def invalidate_all(self) -> None:
        self._cache.clear()
        if self.on_user_dropped is not None:
            self.on_user_dropped(None)

    async def flush_last_used(self) -> None:
        if not self._pending_used:
            return
        pending, self._pending_used = self._pending_used, {}
        try:
            async with self._db.session() as session:
                await key_repo.touch_many(session, pending)
        except Exception:  # a lost last-used time must never fail a request
            log.warning("could not record API key last-used times", exc_info=True)

    async def sync_revocations(self) -> None:
        """Drop cached entries of keys that were revoked by another process."""
        since = self._revocations_seen_at - REVOCATION_LOOKBACK
        checked_at = utcnow()
        try:
            async with self._db.session() as session:
                revoked = set(await key_repo.revoked_since(session, since))
        except Exception:  # keep serving; the next poll retries
            log.warning("could not check for revoked API keys", exc_info=True)
            return
        self._revocations_seen_at = checked_at
        for key_hash, entry in list(self._cache.items()):
            if not entry.revoked and entry.principal.key_id in revoked:
                del self._cache[key_hash]

    async def run_background(self) -> None:
        """Poll for revocations every `REVOCATION_POLL` s; flush last-used times."""
        flushed_at = self._clock()
        while True:
            await asyncio.sleep(REVOCATION_POLL)
            await self.sync_revocations()
            if self._clock() - flushed_at >= LAST_USED_FLUSH:
                flushed_at = self._clock()
                await self.flush_last_used()
