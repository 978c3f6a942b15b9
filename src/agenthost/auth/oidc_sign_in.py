"""Signing in to the web interface through the identity provider (OpenID Connect).

The authorization code flow with PKCE (S256), `state` and `nonce`. `begin` makes the
provider's authorization URL and the flow (state, nonce, PKCE verifier, where to go
after), sealed for the browser to carry in a short-lived cookie; `finish` takes the
provider's answer: the same browser's flow (so a callback URL carried to another browser
is refused), the state it was started with, used once; it exchanges the code, checks the
ID token (`oidc_jwt.py`, audience = client id) and its nonce, and finds the user by
subject, then verified email (`oidc_users.py`), creating one only with `auto_provision`.
`admin_claim` decides the role and `groups_claim` the identity-provider groups at every
sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.exc import IntegrityError

from agenthost.auth.oidc_jwt import verified_claims, verified_email
from agenthost.auth.oidc_keys import SigningKeys
from agenthost.auth.oidc_users import match_user
from agenthost.errors import AgentHostError
from agenthost.sealing import derived_fernet
from agenthost.settings import AdminClaim, OidcSettings
from agenthost.storage.database import Database
from agenthost.storage.models import User
from agenthost.storage.repositories import audit, balances, groups
from agenthost.storage.repositories import users as user_repo

log = logging.getLogger(__name__)

FLOW_SECONDS = 600  # from leaving for the provider to coming back
_PURPOSE = b"agenthost oidc sign-in flow"


class SignInRefused(Exception):
    """The sign-in cannot complete; `message` is for the person signing in."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True, frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next: str


@dataclass(slots=True, frozen=True)
class SignedIn:
    user: User
    next: str
    role_changed: bool
    groups_changed: bool


class OidcSignIn:
    def __init__(
        self,
        settings: OidcSettings,
        keys: SigningKeys,
        db: Database,
        secret: bytes,
        start_balance: int,
        client: httpx.AsyncClient,
    ) -> None:
        assert settings.client_id, "sign-in needs auth.oidc.client_id"
        self._settings = settings
        self._client_id = settings.client_id
        self._keys = keys
        self._db = db
        self._box: Fernet = derived_fernet(secret, _PURPOSE)
        self._start_balance = start_balance
        self._client = client
        self._used: dict[str, float] = {}  # state -> when its flow expires

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL, and the sealed flow for the browser."""
        discovery = await self._keys.discovery()
        flow = Flow(_token(), _token(), secrets.token_urlsafe(48), next_path)
        challenge = _b64(hashlib.sha256(flow.verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._settings.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = str(discovery.get("authorization_endpoint") or "")
        if not endpoint:
            raise SignInRefused("The identity provider names no authorization endpoint.")
        sealed = self._box.encrypt(json.dumps(_as_dict(flow)).encode())
        joiner = "&" if "?" in endpoint else "?"
        return f"{endpoint}{joiner}{urlencode(query)}", sealed.decode()

    async def finish(
        self, redirect_uri: str, sealed: str | None, code: str, state: str
    ) -> SignedIn:
        flow = self._open(sealed)
        if not state or not hmac.compare_digest(flow.state, state):
            raise SignInRefused("This sign-in answer belongs to another attempt. Try again.")
        self._consume(flow.state)
        claims = await self._id_token_claims(redirect_uri, code, flow)
        try:
            return await self._account(claims, flow)
        except IntegrityError:  # an admin changed the same user or groups meanwhile
            raise SignInRefused("Your account changed while signing in. Try again.") from None

    async def _account(self, claims: dict[str, Any], flow: Flow) -> SignedIn:
        async with self._db.session() as session:
            user = await match_user(session, claims["sub"], verified_email(claims))
            if user is None:
                user = await self._provision(session, claims)
            if user.disabled:
                raise SignInRefused("This account is disabled. Ask an administrator.")
            role_changed = self._apply_admin_claim(session, user, claims)
            groups_changed = False
            if self._settings.groups_claim:
                names = claimed(claims, self._settings.groups_claim)
                groups_changed = await groups.sync_oidc_groups(session, user.id, names)
        return SignedIn(user, flow.next, role_changed, groups_changed)

    def _open(self, sealed: str | None) -> Flow:
        try:
            raw = self._box.decrypt((sealed or "").encode(), ttl=FLOW_SECONDS)
            data = json.loads(raw)
            return Flow(data["state"], data["nonce"], data["verifier"], data["next"])
        except (InvalidToken, ValueError, KeyError, TypeError):
            raise SignInRefused(
                "This sign-in was not started in this browser, or took too long. Try again."
            ) from None

    def _consume(self, state: str) -> None:
        now = time.time()
        self._used = {s: until for s, until in self._used.items() if until > now}
        if state in self._used:
            raise SignInRefused("This sign-in answer was already used. Sign in again.")
        self._used[state] = now + FLOW_SECONDS

    async def _id_token_claims(self, redirect_uri: str, code: str, flow: Flow) -> dict[str, Any]:
        if not code:
            raise SignInRefused("The identity provider sent no authorization code.")
        discovery = await self._keys.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.verifier,
        }
        secret = self._settings.client_secret
        headers = {}
        if secret is not None:  # client_secret_basic
            pair = f"{quote(self._client_id)}:{quote(secret.get_secret_value())}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:  # a public client: PKCE alone
            form["client_id"] = self._client_id
        try:
            reply = await self._client.post(
                str(discovery.get("token_endpoint") or ""), data=form, headers=headers, timeout=10
            )
            body = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC token exchange failed: %s", exc)
            raise SignInRefused("The identity provider could not be reached. Try again.") from None
        if reply.status_code != 200 or not isinstance(body, dict) or "id_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            log.warning("OIDC token exchange refused: %s %s", reply.status_code, error)
            raise SignInRefused(f"The identity provider refused the sign-in ({error}).")
        try:
            claims = await verified_claims(str(body["id_token"]), self._keys, self._client_id)
        except AgentHostError as exc:
            raise SignInRefused(f"The identity provider's answer was refused: {exc}") from None
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, flow.nonce):
            raise SignInRefused("The identity provider's answer was not for this sign-in.")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self._client_id:
            raise SignInRefused("The identity provider's answer was issued to another client.")
        return claims

    async def _provision(self, session: Any, claims: dict[str, Any]) -> User:
        email = verified_email(claims)
        if not self._settings.auto_provision or email is None:
            raise SignInRefused(
                "There is no agenthost account for this identity. Ask an administrator."
            )
        if await user_repo.get_by_email(session, email) is not None:
            raise SignInRefused("This email belongs to an account linked to another identity.")
        user = await user_repo.create(session, email, role="user")
        user.oidc_subject = claims["sub"]
        await balances.ensure(session, user.id, self._start_balance)
        return user

    def _apply_admin_claim(self, session: Any, user: User, claims: dict[str, Any]) -> bool:
        rule = self._settings.admin_claim
        if rule is None:
            return False
        role = "admin" if holds(claims, rule) else "user"
        if role == user.role:
            return False
        audit.record(session, "user.role_set", "user", user.id, user.email, {"role": role})
        user.role = role
        return True


def claimed(claims: dict[str, Any], name: str) -> list[str]:
    """The strings of claim `name` (a list or a single string); dots reach into objects,
    as Keycloak's `realm_access.roles`."""
    value: Any = claims
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    found = value if isinstance(value, list) else [value]
    return [item for item in found if isinstance(item, str)]


def holds(claims: dict[str, Any], rule: AdminClaim) -> bool:
    """Whether the claim `rule.name` holds any of `rule.values`."""
    return any(item in rule.values for item in claimed(claims, rule.name))


def _as_dict(flow: Flow) -> dict[str, str]:
    return {"state": flow.state, "nonce": flow.nonce, "verifier": flow.verifier, "next": flow.next}


def _token() -> str:
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
