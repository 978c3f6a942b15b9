"""Showing a secret once after a POST (post/redirect/get): the POST seals it, with the
viewer's user id, into a short-lived cookie scoped to the page it is shown on; the GET opens
it and deletes the cookie, so a reload neither repeats the action nor shows it again."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from starlette.responses import Response

from agenthost.http.client_address import is_secure, trusted_of
from agenthost.sealing import derived_fernet
from agenthost.web.context import Visit

COOKIE = "agenthost_once"
SECONDS = 120


def _box(visit: Visit, purpose: str) -> Fernet:
    return derived_fernet(visit.services.secret, f"agenthost web reveal {purpose}".encode())


def seal(visit: Visit, response: Response, purpose: str, path: str, secret: str) -> None:
    sealed = _box(visit, purpose).encrypt(f"{visit.me.id}:{secret}".encode()).decode()
    secure = is_secure(visit.request, trusted_of(visit.request))
    response.set_cookie(
        COOKIE, sealed, max_age=SECONDS, path=path, httponly=True, samesite="strict", secure=secure
    )


def take(visit: Visit, purpose: str) -> str | None:
    """The secret sealed for this viewer, if any (the caller deletes the cookie)."""
    sealed = visit.request.cookies.get(COOKIE)
    if not sealed:
        return None
    try:
        plain = _box(visit, purpose).decrypt(sealed.encode(), ttl=SECONDS).decode()
    except (InvalidToken, UnicodeDecodeError):
        return None
    owner, _, secret = plain.partition(":")
    return secret if owner == visit.me.id and secret else None


def forget(response: Response, path: str) -> None:
    response.delete_cookie(COOKIE, path=path)
