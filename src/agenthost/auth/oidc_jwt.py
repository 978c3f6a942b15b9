"""Checking a JWT from the configured issuer: shared by bearer tokens on the API (audience
`auth.oidc.api.audience`) and ID tokens at sign-in (audience `auth.oidc.client_id`).

An asymmetric signature by one of the issuer's published keys (`oidc_keys.py`), `iss`
exactly, `aud` containing the audience, `exp`/`nbf`/`iat` within `LEEWAY` seconds, and a
subject. Anything else raises `AuthenticationFailed` (`invalid_token`, `expired_token`).
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt.exceptions import ExpiredSignatureError, InvalidTokenError

from agenthost.auth.oidc_keys import ALGORITHMS, SigningKeys
from agenthost.errors import AuthenticationFailed

LEEWAY = 60
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


def invalid(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, code="invalid_token")


async def verified_claims(token: str, keys: SigningKeys, audience: str) -> dict[str, Any]:
    """The token's claims once every check has passed."""
    try:
        header = jwt.get_unverified_header(token)
    except InvalidTokenError:
        raise invalid("The bearer token is neither an API key nor a valid JWT.") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise invalid(f"Tokens signed with {alg!r} are not accepted.")
    if kid is not None and not isinstance(kid, str):
        raise invalid("The token's key id is malformed.")
    key = await keys.key_for(kid, alg)
    if key is None:
        raise invalid("The token is not signed by a key of the configured issuer.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=keys.issuer,
            leeway=LEEWAY,
            options={"require": _REQUIRED_CLAIMS},
        )
    except ExpiredSignatureError:
        raise AuthenticationFailed("The token has expired.", code="expired_token") from None
    except InvalidTokenError as exc:
        raise invalid(f"The token was refused: {exc}.") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise invalid("The token has no usable subject.")
    return claims


def verified_email(claims: dict[str, Any]) -> str | None:
    """The token's email, only when the issuer vouches for it (`email_verified: true`)."""
    email = claims.get("email")
    if claims.get("email_verified") is True and isinstance(email, str) and "@" in email:
        return email
    return None
