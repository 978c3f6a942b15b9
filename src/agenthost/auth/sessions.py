"""Browser sessions: a signed cookie, a per-session CSRF token, and login throttling.

The cookie holds only the user id and a random session nonce, signed (not encrypted)
with the server secret and valid for `SESSION_MAX_AGE`. Every visitor gets one (signed
out, the user id is empty) so that even the sign-in form carries a CSRF token. The CSRF
token is an HMAC of the nonce: forms send it in a hidden field, scripts in the
`X-CSRF-Token` header. Signing in rotates the nonce, so a token seen before sign-in is
useless afterwards; signing out drops the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from agenthost.auth.principal import Principal
from agenthost.server_secret import server_secret
from agenthost.settings import Settings
from agenthost.storage.database import Database
from agenthost.storage.repositories import users as user_repo

COOKIE_NAME = "agenthost_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600


@dataclass(slots=True, frozen=True)
class SessionData:
    user_id: str | None
    nonce: str


def new_session(user_id: str | None = None) -> SessionData:
    return SessionData(user_id=user_id, nonce=secrets.token_urlsafe(18))


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


def cookie_options(secure: bool) -> dict[str, Any]:
    """HttpOnly and SameSite=Lax always; Secure whenever the request came over TLS."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
        "max_age": SESSION_MAX_AGE,
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
        codec = SessionCodec(session_secret(services.settings, services))
        state.web_sessions = codec
    assert isinstance(codec, SessionCodec)
    return codec


async def session_principal(
    db: Database, codec: SessionCodec, cookie: str | None, csrf: str | None
) -> Principal | None:
    """The signed-in browser user for an API call, when it carries the CSRF header.

    The header cannot be set by another site's form or image, which is what makes the
    cookie safe to accept on the API (same-origin scripts such as the playground).
    """
    data = codec.decode(cookie)
    if data is None or data.user_id is None or not codec.csrf_ok(data, csrf):
        return None
    async with db.session() as session:
        user = await user_repo.get(session, data.user_id)
    if user is None or user.disabled:
        return None
    return Principal(user_id=user.id, email=user.email, role=user.role)
