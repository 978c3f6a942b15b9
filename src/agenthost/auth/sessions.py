"""Browser sessions: a signed cookie, a server-side record, a per-session CSRF token.

The cookie holds only the user id and a random session nonce, signed (not encrypted)
with the server secret. Every visitor gets one (signed out, the user id is empty) so that
even the sign-in form carries a CSRF token. A signed-in cookie is honoured only while its
`web_sessions` row exists and is neither idle past `web.session_idle_seconds` nor older
than `web.session_max_seconds`: signing out, "sign out everywhere", a password change or
disabling the user deletes rows, and every worker sees that on the next request (the
database is the one source; nothing is cached). The CSRF token is an HMAC of the nonce:
forms send it in a hidden field, scripts in the `X-CSRF-Token` header. Signing in rotates
the nonce, so a token seen before sign-in is useless afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from agenthost.auth.principal import Principal
from agenthost.server_secret import server_secret
from agenthost.settings import Settings
from agenthost.storage.database import Database
from agenthost.storage.models import User, WebSession, utcnow
from agenthost.storage.repositories import web_sessions as session_repo

COOKIE_NAME = "agenthost_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600
TOUCH_SECONDS = 60  # last use is written at most this often (or a quarter of the idle time)


@dataclass(slots=True, frozen=True)
class SessionData:
    user_id: str | None
    nonce: str


def new_session(user_id: str | None = None) -> SessionData:
    return SessionData(user_id=user_id, nonce=secrets.token_urlsafe(18))


def session_id(data: SessionData) -> str:
    """The key of the session's row: the nonce's SHA-256 (a database copy is no cookie)."""
    return hashlib.sha256(data.nonce.encode()).hexdigest()


class SessionStore:
    """The server-side half of signed-in sessions."""

    def __init__(self, db: Database, idle_seconds: float, max_seconds: float) -> None:
        self._db = db
        self.idle = timedelta(seconds=idle_seconds)
        self.lifetime = timedelta(seconds=max_seconds)
        self._touch_every = min(TOUCH_SECONDS, idle_seconds / 4)

    async def start(self, data: SessionData, *, address: str = "", user_agent: str = "") -> None:
        assert data.user_id is not None
        now = utcnow()
        row = WebSession(
            id=session_id(data),
            user_id=data.user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime,
            address=address[:64],
            user_agent=user_agent[:200],
        )
        async with self._db.session() as session:
            await session_repo.sweep(session, data.user_id, now - self.idle, now)
            await session_repo.create(session, row)

    async def user_of(self, data: SessionData) -> User | None:
        """The signed-in, enabled user of a live session; None otherwise."""
        if data.user_id is None:
            return None
        now = utcnow()
        async with self._db.session() as session:
            found = await session_repo.live(
                session, session_id(data), data.user_id, now - self.idle, now
            )
            if found is None or found[1].disabled:
                return None
            row, user = found
            if (now - row.last_seen_at).total_seconds() >= self._touch_every:
                await session_repo.touch(session, row.id, now)
        return user

    async def end(self, data: SessionData) -> None:
        async with self._db.session() as session:
            await session_repo.end(session, session_id(data))

    async def end_one(self, user_id: str, row_id: str) -> bool:
        async with self._db.session() as session:
            return await session_repo.end(session, row_id, user_id)

    async def end_all(self, user_id: str) -> int:
        async with self._db.session() as session:
            return await session_repo.end_all(session, user_id)

    async def of_user(self, user_id: str) -> list[WebSession]:
        async with self._db.session() as session:
            return await session_repo.of_user(session, user_id, utcnow())


class SessionCodec:
    """Signs and checks session cookies and derives their CSRF tokens."""

    def __init__(self, secret: bytes, max_age: int = SESSION_MAX_AGE) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt="agenthost.session")
        self.max_age = max_age

    def encode(self, data: SessionData) -> str:
        return self._serializer.dumps({"u": data.user_id, "n": data.nonce})

    def decode(self, cookie: str | None) -> SessionData | None:
        if not cookie:
            return None
        try:
            raw = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also covers expired signatures
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("n"), str):
            return None
        user_id = raw.get("u")
        return SessionData(user_id if isinstance(user_id, str) else None, raw["n"])

    def csrf_token(self, data: SessionData) -> str:
        return hmac.new(self._secret, b"csrf:" + data.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, data: SessionData, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(data), token or "")


def cookie_options(secure: bool, max_age: float = SESSION_MAX_AGE) -> dict[str, Any]:
    """HttpOnly and SameSite=Lax always; Secure whenever the request came over TLS."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
        "max_age": int(max_age),
    }


def session_secret(settings: Settings, services: Any = None) -> bytes:
    """The server secret (config or generated once in data_dir), kept apart for sessions.

    Deriving a dedicated key means a session signature can never be replayed as any
    other value sealed with the same server secret.
    """
    shared = getattr(services, "secret", b"")
    root = shared if isinstance(shared, bytes) and shared else server_secret(settings)
    return hmac.new(root, b"agenthost web sessions", hashlib.sha256).digest()


def codec_for(state: Any) -> SessionCodec:
    """The app's codec, built on first use (the services exist only after start-up)."""
    codec = getattr(state, "web_sessions", None)
    if codec is None:
        services = state.services
        lifetime = int(services.settings.web.session_max_seconds)
        codec = SessionCodec(session_secret(services.settings, services), lifetime)
        state.web_sessions = codec
    assert isinstance(codec, SessionCodec)
    return codec


async def session_principal(
    store: SessionStore, codec: SessionCodec, cookie: str | None, csrf: str | None
) -> Principal | None:
    """The signed-in browser user for an API call, when it carries the CSRF header.

    The header cannot be set by another site's form or image, which is what makes the
    cookie safe to accept on the API (same-origin scripts such as the playground).
    """
    data = codec.decode(cookie)
    if data is None or data.user_id is None or not codec.csrf_ok(data, csrf):
        return None
    user = await store.user_of(data)
    if user is None:
        return None
    return Principal(user_id=user.id, email=user.email, role=user.role)
