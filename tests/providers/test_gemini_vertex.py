"""Gemini through Vertex AI (`type: google` with `vertex`), through a real `agenthost
serve`: a service-account key file (an RSA key made here) exchanged for a bearer token at
the fake's token endpoint by google-auth, calls at Vertex's project/location address, the
token reused, and refused credentials or a bad key file reported clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.process import start_process, stop_process
from tests.reliability.modes import call
from tests.reliability.support import marker
from tests.support.server import Server, running_server

pytest.importorskip("google.auth", reason="the Vertex AI tests need google-auth (test extra)")

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "gemini_upstream.py"
EMAIL = "vertex-user@example.com"


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    proc, port = start_process([str(FAKE), "--port", "0"])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def key_file(folder: Path, root: str, email: str) -> str:
    """A service-account JSON key as Google issues them, with a fresh RSA key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "proj-1",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": f"{root}/token",
    }
    path = folder / f"{email.split('@')[0]}.json"
    path.write_text(json.dumps(info))
    return str(path)


@pytest.fixture(scope="module")
def vertex(tmp_path_factory: pytest.TempPathFactory, root: str) -> Iterator[tuple[Server, str]]:
    folder = tmp_path_factory.mktemp("vertex")
    good = key_file(folder, root, "agent@proj-1.iam.gserviceaccount.com")
    refused = key_file(folder, root, "refused@proj-1.iam.gserviceaccount.com")
    base = {"type": "google", "base_url": f"{root}/v1", "max_retries": 0}
    location = {"project": "proj-1", "location": "europe-west4"}
    providers = {
        "vertex": {**base, "vertex": {**location, "credentials_file": good}},
        "vertex-refused": {**base, "vertex": {**location, "credentials_file": refused}},
    }
    with running_server(folder, None, {"providers": providers}) as server:
        server.add_user(EMAIL)
        yield server, server.create_key(EMAIL)


def _seen(root: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{root}/_requests", timeout=10).json())


def test_calls_go_to_vertex_with_one_reused_bearer_token(
    vertex: tuple[Server, str], root: str
) -> None:
    server, key = vertex
    agent = server.create_agent(EMAIL, "vertex", "gemini-2.5-flash")
    words = [marker(), marker()]
    for mode, word in zip(("chat-json", "responses-sse"), words, strict=True):
        out = call(server.api, key, mode, agent, f"{word}\n!text from vertex")
        assert out.status == 200 and out.text == "from vertex", out
    seen = _seen(root)
    calls = [r for r in seen if any(w in json.dumps(r.get("body", {})) for w in words)]
    assert [r["path"] for r in calls] == [
        "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-flash:streamGenerateContent"
    ] * 2
    tokens = {r["headers"]["authorization"] for r in calls}
    assert len(tokens) == 1 and tokens.pop().startswith("Bearer ya29.fake-")
    assert all("x-goog-api-key" not in r["headers"] for r in calls)
    grants = [r for r in seen if r["path"] == "/token" and r["claims"]["iss"].startswith("agent@")]
    assert len(grants) == 1  # the token is reused until it nears expiry
    assert grants[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grants[0]["claims"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"


def test_refused_service_account_is_a_credentials_error(vertex: tuple[Server, str]) -> None:
    server, key = vertex
    agent = server.create_agent(EMAIL, "vertex-refused", "gemini-2.5-flash")
    client = openai.OpenAI(base_url=server.api, api_key=key, max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    message = caught.value.response.json()["error"]["message"]
    assert "credentials rejected" in message and "invalid_grant" in message
    assert "PRIVATE KEY" not in server.log()


@pytest.mark.parametrize(
    ("vertex_settings", "named"),
    [
        ({"project": "p", "credentials_file": "/nonexistent/key.json"}, "vertex.credentials_file"),
        ({"project": "p/../x"}, "vertex.project"),
        ({"project": "p", "location": "us-central1.evil.example"}, "vertex.location"),
    ],
)
def test_bad_vertex_settings_stop_the_server_naming_them(
    tmp_path: Path, vertex_settings: dict[str, str], named: str
) -> None:
    providers = {"g": {"type": "google", "vertex": vertex_settings}}
    with running_server(tmp_path, None, {"providers": providers}, start=False) as server:
        done = server.cli("serve", "--port", "1", check=False)
    assert done.returncode != 0
    assert f"config error: providers.g.{named}" in done.stderr, done.stderr
