"""OIDC bearer tokens on the Agents API, end to end: a real agenthost, a fake issuer
publishing discovery and keys over HTTP, and tokens signed here, good and hostile."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from websockets.sync.client import connect

from tests.auth.conftest import Issuer
from tests.support.oidc import (
    AUDIENCE,
    SCOPE,
    SigningKey,
    claims,
    hmac_signed,
    unsigned,
)
from tests.support.server import Server, free_port, running_server


def oidc_config(issuer_url: str) -> dict[str, Any]:
    api = {"enabled": True, "audience": AUDIENCE, "required_scopes": [SCOPE]}
    return {"auth": {"oidc": {"issuer": issuer_url, "client_id": "agenthost", "api": api}}}


@dataclass
class Site:
    server: Server
    agent: str  # carol's
    key: str
    dave_agent: str = ""


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str, issuer: Issuer
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("oidc-site")
    with running_server(folder, upstream_url, oidc_config(issuer.url)) as server:
        for email in ("carol@example.com", "dave@example.com"):
            server.add_user(email)
        agent = server.create_agent("carol@example.com", "fake", "gpt-4o-mini")
        dave_agent = server.create_agent("dave@example.com", "scripted", "m")
        yield Site(server, agent, server.create_key("carol@example.com"), dave_agent)


def call(site: Site, token: str, agent: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{site.server.api}/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json={"model": agent or site.agent, "messages": [{"role": "user", "content": "!text ok"}]},
        timeout=30,
    )


def carol(issuer: Issuer, **extra: Any) -> dict[str, Any]:
    return claims(issuer.url, "sub-carol", "carol@example.com", **extra)


def test_a_token_calls_both_interfaces_and_is_billed_like_a_key(site: Site, issuer: Issuer) -> None:
    token = issuer.rsa.sign(carol(issuer))
    client = openai.OpenAI(base_url=site.server.api, api_key=token, max_retries=0)
    with client:
        assert [m.id for m in client.models.list()] == [site.agent]
        reply = client.chat.completions.create(
            model=site.agent, messages=[{"role": "user", "content": "!text from a token"}]
        )
        assert reply.choices[0].message.content == "from a token"
        response = client.responses.create(model=site.agent, input="!text via responses")
        assert response.output_text == "via responses"
        chained = client.responses.create(
            model=site.agent, input="!text again", previous_response_id=response.id
        )
        assert chained.status == "completed"
    ledger = site.server.cli("balance", "show", "carol@example.com").stdout
    assert ledger.count("usage") >= 3, ledger  # each call charged carol's balance


def test_the_subject_is_bound_at_first_match_and_matched_after(site: Site, issuer: Issuer) -> None:
    first = issuer.ec.sign(claims(issuer.url, "sub-dave", "dave@example.com"))
    assert call(site, first, site.dave_agent).status_code == 200
    # The same subject without a (verified) email is still dave: matched by subject.
    later = issuer.ec.sign(claims(issuer.url, "sub-dave", email_verified=False))
    assert call(site, later, site.dave_agent).status_code == 200
    # Another subject claiming dave's verified email is not dave.
    impostor = issuer.rsa.sign(claims(issuer.url, "sub-other", "dave@example.com"))
    assert call(site, impostor, site.dave_agent).status_code == 401


def test_the_websocket_mode_takes_a_token(site: Site, issuer: Issuer) -> None:
    token = issuer.rsa.sign(carol(issuer))
    url = site.server.api.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers={"authorization": f"Bearer {token}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": site.agent, "input": "!text ws"}))
        events = [json.loads(ws.recv(timeout=30))]
        while events[-1]["type"] not in {"response.completed", "response.failed", "error"}:
            events.append(json.loads(ws.recv(timeout=30)))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "ws"


def _disabled_user(site: Site) -> str:
    email = f"gone-{uuid.uuid4().hex[:6]}@example.com"
    site.server.add_user(email)
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        db.execute("UPDATE users SET disabled = 1 WHERE email = ?", (email,))
    return email


NO_USER = "This token's user has no access to agenthost."


def hostile_tokens(issuer: Issuer, site: Site) -> dict[str, tuple[str, int, str]]:
    """Each case: (token, status, code); most are a plain 401 invalid_token."""
    now = int(time.time())
    good = carol(issuer)
    sign = issuer.rsa.sign
    other_issuer = SigningKey.rsa("rsa-1")  # same kid, another issuer's key
    head, body, signature = sign(good).split(".")
    forged_body = unsigned(good | {"sub": "sub-admin"}, {}).split(".")[1]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    without = {name: {k: v for k, v in good.items() if k != name} for name in ("aud", "exp")}
    refused = {
        "wrong aud": sign(good | {"aud": "someone-else"}),
        "no aud": sign(without["aud"]),
        "wrong iss": sign(good | {"iss": issuer.base + "/realms/other"}),
        "not yet valid": sign(good | {"nbf": now + 600}),
        "issued in the future": sign(good | {"iat": now + 600}),
        "no exp": sign(without["exp"]),
        "alg none": unsigned(good, {"alg": "none", "kid": "rsa-1"}),
        "HS256 keyed with the public key": hmac_signed(good, "rsa-1", issuer.rsa.public_pem()),
        "tampered payload": f"{head}.{forged_body}.{signature}",
        "tampered signature": f"{head}.{body}.{flipped}",
        "unknown kid": sign(good, kid="rsa-unknown"),
        "RSA signature naming the EC key": sign(good, kid="ec-1"),
        "second issuer": other_issuer.sign(good | {"iss": "https://other.example.com"}),
        "second issuer's key, our iss": other_issuer.sign(good),
        "unknown user": sign(claims(issuer.url, "sub-nobody", "nobody@example.com")),
        "disabled user": sign(claims(issuer.url, "sub-gone", _disabled_user(site))),
        "unverified email": sign(
            claims(issuer.url, "sub-x", "carol@example.com") | {"email_verified": False}
        ),
        "not a JWT": "not-a-jwt",
        "three dots of junk": "a.b.c",
        "a header that is not an object": "WzFd.e30.",
    }
    cases = {case: (token, 401, "invalid_token") for case, token in refused.items()}
    cases["expired"] = (sign(good | {"exp": now - 120, "iat": now - 600}), 401, "expired_token")
    cases["missing scope"] = (sign(good | {"scope": "openid"}), 403, "insufficient_scope")
    return cases


def test_hostile_tokens_are_refused_in_the_one_error_shape(site: Site, issuer: Issuer) -> None:
    seen = {}
    for case, (token, status, code) in hostile_tokens(issuer, site).items():
        reply = call(site, token)
        body = reply.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        seen[case] = (reply.status_code, body["error"]["code"])
        assert seen[case] == (status, code), (case, body)
        if case in {"unknown user", "disabled user", "unverified email"}:
            assert body["error"]["message"] == NO_USER  # never tells which


def test_accepted_variants(site: Site, issuer: Issuer) -> None:
    now = int(time.time())
    good = carol(issuer)
    accepted = {
        "expired within the leeway": good | {"exp": now - 20},
        "scp as a list": {k: v for k, v in good.items() if k != "scope"} | {"scp": [SCOPE]},
        "aud as a list": good | {"aud": ["other", AUDIENCE]},
    }
    for case, payload in accepted.items():
        assert call(site, issuer.rsa.sign(payload)).status_code == 200, case
    no_kid = issuer.ec.sign(good, kid=None)  # one EC key: unambiguous without a kid
    assert call(site, no_kid).status_code == 200


def test_made_up_kids_read_the_jwks_at_most_once_per_30_seconds(site: Site, issuer: Issuer) -> None:
    assert call(site, issuer.rsa.sign(carol(issuer))).status_code == 200  # keys are read
    before = issuer.stats()["jwks_fetches"]
    for _ in range(25):
        token = issuer.rsa.sign(carol(issuer), kid=uuid.uuid4().hex)
        assert call(site, token).status_code == 401
    assert issuer.stats()["jwks_fetches"] - before <= 1


def test_an_unreachable_issuer_is_a_503_while_keys_keep_working(
    tmp_path: Path, upstream_url: str, issuer: Issuer
) -> None:
    gone = f"http://127.0.0.1:{free_port()}/realms/acme"
    with running_server(tmp_path, upstream_url, oidc_config(gone)) as server:
        server.add_user("erin@example.com")
        agent = server.create_agent("erin@example.com", "scripted", "m")
        site = Site(server, agent, server.create_key("erin@example.com"))
        token = issuer.rsa.sign(claims(gone, "sub-erin", "erin@example.com"))
        for _ in range(2):  # the second within the refetch bound: still 503, not 401
            reply = call(site, token)
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"]["code"] == "identity_provider_unavailable"
        assert call(site, site.key).status_code == 200


def test_a_service_account_acts_as_the_user_its_subject_is_linked_to(
    site: Site, issuer: Issuer
) -> None:
    # Client-credentials tokens carry no email: an admin links the subject by hand.
    email = f"robot-{uuid.uuid4().hex[:6]}@example.com"
    site.server.add_user(email)
    agent = site.server.create_agent(email, "scripted", "m")
    subject = f"service-account-{uuid.uuid4().hex[:6]}"
    done = site.server.cli("users", "set-oidc-subject", email, subject)
    assert subject in done.stdout
    token = issuer.rsa.sign(claims(issuer.url, subject))
    assert call(site, token, agent).status_code == 200
    taken = site.server.cli("users", "set-oidc-subject", "carol@example.com", subject, check=False)
    assert taken.returncode != 0 and "already belongs" in taken.stderr
    neither = site.server.cli("users", "set-oidc-subject", email, check=False)
    assert neither.returncode != 0 and "--clear" in neither.stderr
