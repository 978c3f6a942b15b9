"""The sign-in's checks of the provider's answer that a real provider never fails
(a wrong nonce, another client's ID token): `OidcSignIn` in-process, against the fake
issuer over HTTP, whose token endpoint answers an ID token the test signs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agenthost.auth.oidc_keys import SigningKeys
from agenthost.auth.oidc_sign_in import OidcSignIn, SignInRefused
from agenthost.settings import OidcSettings
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.repositories import users
from tests.auth.conftest import Issuer
from tests.support.oidc import claims

REDIRECT = "http://127.0.0.1:1/auth/oidc/callback"


@pytest.fixture
async def sign_in(tmp_path: Path, issuer: Issuer) -> AsyncIterator[OidcSignIn]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/sign-in.db")
    await upgrade(db.engine)
    async with db.session() as session:
        await users.create(session, "gail@example.com")
    settings = OidcSettings(issuer=issuer.url, client_id="agenthost", client_secret="s3cret")
    async with httpx.AsyncClient() as client:
        keys = SigningKeys(issuer.url, client)
        yield OidcSignIn(settings, keys, db, b"k" * 32, 0, client)
    await db.dispose()


async def answer(issuer: Issuer, **overrides: object) -> None:
    reply = {"access_token": "opaque", "token_type": "Bearer", **overrides}
    httpx.put(f"{issuer.base}/_token_reply", json=reply, timeout=5).raise_for_status()


async def started(sign_in: OidcSignIn) -> tuple[str, str]:
    url, sealed = await sign_in.begin(REDIRECT, "/usage")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    return sealed, query["state"][0]


def id_token(issuer: Issuer, nonce: str, **extra: object) -> str:
    payload = claims(issuer.url, "sub-gail", "gail@example.com", aud="agenthost", nonce=nonce)
    return issuer.rsa.sign(payload | extra)


async def test_the_right_answer_signs_in_and_sends_the_verifier(
    sign_in: OidcSignIn, issuer: Issuer
) -> None:
    sealed, state = await started(sign_in)
    nonce = _nonce_of(sign_in, sealed)
    await answer(issuer, id_token=id_token(issuer, nonce))
    done = await sign_in.finish(REDIRECT, sealed, "code-1", state)
    assert done.user.email == "gail@example.com" and done.next == "/usage"
    sent = httpx.get(f"{issuer.base}/_stats", timeout=5).json()["token_requests"][-1]
    assert sent["code"] == "code-1" and len(sent["code_verifier"]) >= 43
    assert sent["redirect_uri"] == REDIRECT


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong nonce", "not for this sign-in"),
        ("no nonce", "not for this sign-in"),
        ("another client's token", "was refused"),
        ("two audiences, azp another client", "issued to another client"),
        ("expired", "was refused"),
    ],
)
async def test_an_answer_that_is_not_for_this_sign_in_is_refused(
    sign_in: OidcSignIn, issuer: Issuer, case: str, expected: str
) -> None:
    sealed, state = await started(sign_in)
    nonce = _nonce_of(sign_in, sealed)
    tokens = {
        "wrong nonce": id_token(issuer, "another-nonce"),
        "no nonce": issuer.rsa.sign(claims(issuer.url, "sub-gail", aud="agenthost")),
        "another client's token": id_token(issuer, nonce, aud="someone-else"),
        "two audiences, azp another client": id_token(
            issuer, nonce, aud=["agenthost", "other"], azp="other"
        ),
        "expired": id_token(issuer, nonce, exp=1, iat=0),
    }
    await answer(issuer, id_token=tokens[case])
    with pytest.raises(SignInRefused) as refused:
        await sign_in.finish(REDIRECT, sealed, "code-1", state)
    assert expected in refused.value.message


async def test_a_provider_error_and_a_reused_state_are_refused(
    sign_in: OidcSignIn, issuer: Issuer
) -> None:
    sealed, state = await started(sign_in)
    await answer(issuer, error="invalid_grant")
    with pytest.raises(SignInRefused, match="refused the sign-in"):
        await sign_in.finish(REDIRECT, sealed, "code-1", state)
    with pytest.raises(SignInRefused, match="already used"):
        await sign_in.finish(REDIRECT, sealed, "code-1", state)
    with pytest.raises(SignInRefused, match="not started in this browser"):
        await sign_in.finish(REDIRECT, sealed[:-4] + "AAAA", "code-1", state)


def _nonce_of(sign_in: OidcSignIn, sealed: str) -> str:
    return sign_in._open(sealed).nonce  # what the browser carries, opened as the server does
