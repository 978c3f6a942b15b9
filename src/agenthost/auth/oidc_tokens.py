"""OIDC bearer tokens on the Agents API: a JWT from the configured issuer, for an
existing agenthost user.

A token is checked as `oidc_jwt.py` says, plus the required scopes. A checked token is
remembered until its `exp`, so the signature is verified once per token, not per
request. The user is found by the stored subject, then by verified email
(`oidc_users.py`); unknown and disabled users get the same 401, so a token never tells
whether a user exists. User lookups are cached per subject like API
keys (`CACHE_TTL`), and dropped when the user is disabled or changes role.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from agenthost.auth.oidc_jwt import invalid, verified_claims, verified_email
from agenthost.auth.oidc_keys import SigningKeys
from agenthost.auth.oidc_users import match_user
from agenthost.auth.principal import Principal
from agenthost.errors import PermissionDenied
from agenthost.settings import OidcApiSettings
from agenthost.single_flight import SingleFlight
from agenthost.storage.database import Database

CACHE_TTL = 30.0
# Checked tokens kept at most; a full cache drops its expired entries, then starts over.
MAX_CACHED_TOKENS = 10_000


@dataclass(slots=True, frozen=True)
class _Checked:
    subject: str
    email: str | None  # only when the issuer says it is verified
    expires_at: float


@dataclass(slots=True, frozen=True)
class _Account:
    user_id: str | None  # None: no such user (cached like a found one)
    email: str
    role: str
    disabled: bool
    cached_at: float


_NO_USER = "This token's user has no access to agenthost."


class TokenAuthenticator:
    """Turns a JWT into a `Principal`, or raises (401 invalid_token / expired_token,
    403 insufficient_scope, 503 when the issuer's keys cannot be read)."""

    def __init__(
        self,
        db: Database,
        keys: SigningKeys,
        api: OidcApiSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._keys = keys
        self._audience = api.audience or ""
        self._scopes = frozenset(api.required_scopes)
        self._clock = clock
        self._tokens: dict[bytes, _Checked] = {}
        self._accounts: dict[str, _Account] = {}
        self._loads: SingleFlight[str, _Account] = SingleFlight()

    async def authenticate(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        checked = self._tokens.get(digest)
        if checked is None or time.time() >= checked.expires_at:
            checked = await self._check(token)
            self._remember(digest, checked)
        cached = self._accounts.get(checked.subject)
        age = self._clock() - cached.cached_at if cached is not None else None
        load = partial(self._load, checked)
        account = await self._loads.cached(checked.subject, load, CACHE_TTL, age, cached)
        if account.user_id is None or account.disabled:
            raise invalid(_NO_USER)
        return Principal(
            user_id=account.user_id,
            email=account.email,
            role=account.role,
            token_subject=checked.subject,
            bearer_token=token,
        )

    async def _check(self, token: str) -> _Checked:
        claims = await verified_claims(token, self._keys, self._audience)
        missing = self._scopes - _scopes_of(claims)
        if missing:
            raise PermissionDenied(
                f"The token lacks the scope(s) {', '.join(sorted(missing))}.",
                code="insufficient_scope",
            )
        return _Checked(
            subject=claims["sub"], email=verified_email(claims), expires_at=float(claims["exp"])
        )

    def _remember(self, digest: bytes, checked: _Checked) -> None:
        if len(self._tokens) >= MAX_CACHED_TOKENS:
            now = time.time()
            self._tokens = {d: c for d, c in self._tokens.items() if c.expires_at > now}
            if len(self._tokens) >= MAX_CACHED_TOKENS:
                self._tokens.clear()  # a flood of live tokens: verify again, stay bounded
        self._tokens[digest] = checked

    async def _load(self, checked: _Checked) -> _Account:
        async with self._db.session() as session:
            user = await match_user(session, checked.subject, checked.email)
        if user is None:
            account = _Account(None, "", "", True, self._clock())
        else:
            account = _Account(user.id, user.email, user.role, user.disabled, self._clock())
        if len(self._accounts) >= MAX_CACHED_TOKENS:
            self._accounts.clear()
        self._accounts[checked.subject] = account
        return account

    def drop(self, user_id: str | None = None) -> None:
        """Forget cached users (all, or one): a disabled user or new role applies at once."""
        if user_id is None:
            self._accounts.clear()
            return
        for subject, account in list(self._accounts.items()):
            if account.user_id == user_id:
                del self._accounts[subject]


def _scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (space-separated, RFC 9068) or `scp` (a list, or a string: Entra, Okta)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)
