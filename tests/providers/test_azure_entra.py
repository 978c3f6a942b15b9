"""Azure OpenAI with Microsoft Entra ID (`auth: entra`), against the fake upstream's Azure
addresses requiring a bearer token it issued and its fake token endpoint (Entra ID's
client-credentials grant), through a real `agenthost serve` and the `openai` SDK.

Client credentials: one token serves many calls, concurrent calls share one fetch, the
key header is never sent, a refused secret is a credentials error without the secret.
A token command: its output is the token, cached until shortly before az's `expires_on`,
and a command that hangs is stopped at its timeout."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from agenthost.settings import ProviderSettings
from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, running_server

FAKES = Path(__file__).parents[1] / "fakes"
OWNER = "entra@example.com"
TENANT, CLIENT, SECRET = "contoso", "app-0001", "client-secret-9f8e7d6c5b4a"
STATIC_TOKEN = "static-command-token-1234"


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    """An upstream of our own: its Entra mode would refuse other tests' key-only calls."""
    proc, port = start_process([str(FAKES / "openai_upstream.py"), "--port", "0"])
    root = f"http://127.0.0.1:{port.strip()}"
    entra = {
        "tenant": TENANT,
        "client_id": CLIENT,
        "client_secret": SECRET,
        "accept": [STATIC_TOKEN, "az-json-token"],
    }
    try:
        httpx.put(f"{root}/_entra", json=entra, timeout=10).raise_for_status()
        yield root
    finally:
        stop_process(proc)


def _script(folder: Path, name: str, body: str) -> str:
    """A token command: a Python script that counts its runs in `<name>.runs`."""
    path = folder / f"{name}.py"
    runs = folder / f"{name}.runs"
    path.write_text(f"open({str(runs)!r}, 'a').write('x')\n{body}\n")
    return f"{sys.executable} {path}"


def _runs(server: Server, name: str) -> int:
    path = server.folder / f"{name}.runs"
    return len(path.read_text()) if path.exists() else 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("entra")
    azure = {"type": "azure_openai", "endpoint": fake, "max_retries": 0, "auth": "entra"}
    credentials = {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": SECRET,
        "authority_url": fake,
    }
    az_json = "import json, time\nprint(json.dumps({'accessToken': 'az-json-token', "
    az_json += "'expires_on': int(time.time()) + 6, 'tokenType': 'Bearer'}))"
    providers = {
        "cc": {**azure, **credentials},
        "cc-herd": {**azure, **credentials},
        "cc-revoked": {**azure, **credentials},
        "cc-wrong": {**azure, **credentials, "client_secret": "not-the-secret-0000"},
        "cmd": {**azure, "token_command": _script(folder, "cmd", f"print({STATIC_TOKEN!r})")},
        "az": {**azure, "token_command": _script(folder, "az", az_json)},
        "hang": {
            **azure,
            "token_command": _script(folder, "hang", "import time\ntime.sleep(30)"),
            "token_command_timeout_seconds": 1,
        },
    }
    with running_server(folder, None, {"providers": providers}) as srv:
        srv.add_user(OWNER)
        yield srv


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    key = server.create_key(OWNER)
    with openai.OpenAI(base_url=server.api, api_key=key, max_retries=0, timeout=30) as made:
        yield made


def _records(fake: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{fake}/_requests", timeout=10).json()
    return found


def _token_fetches(fake: str) -> list[dict[str, Any]]:
    return [r for r in _records(fake) if r["path"] == f"/{TENANT}/oauth2/v2.0/token"]


def _chat(client: openai.OpenAI, agent: str, text: str) -> str:
    completion = client.chat.completions.create(
        model=agent, messages=[{"role": "user", "content": f"!text {text}"}]
    )
    return completion.choices[0].message.content or ""


def test_client_credentials_token_serves_calls_as_a_bearer(
    server: Server, client: openai.OpenAI, fake: str
) -> None:
    agent = server.create_agent(OWNER, "cc", "gpt-4o-mini")
    before = len(_token_fetches(fake))
    assert _chat(client, agent, "first") == "first"
    streamed = client.responses.create(model=agent, input="!text second", stream=True)
    assert [e for e in streamed][-1].response.output_text == "second"
    fetches = _token_fetches(fake)[before:]
    assert len(fetches) == 1  # cached for both calls
    form = fetches[0]["body"]
    assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT
    assert form["scope"] == "https://cognitiveservices.azure.com/.default"
    calls = [r for r in _records(fake) if r["path"].startswith("/openai/deployments/")][-2:]
    for call in calls:
        assert call["headers"]["authorization"].startswith("Bearer entra-")
        assert "api-key" not in call["headers"]


def test_concurrent_calls_share_one_token_fetch(
    server: Server, client: openai.OpenAI, fake: str
) -> None:
    agent = server.create_agent(OWNER, "cc-herd", "gpt-4o-mini")
    before = len(_token_fetches(fake))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _chat(client, agent, f"n{i}"), range(8)))
    assert answers == [f"n{i}" for i in range(8)]
    assert len(_token_fetches(fake)) - before == 1


def test_a_refused_client_secret_is_a_credentials_error_without_the_secret(
    server: Server, client: openai.OpenAI
) -> None:
    agent = server.create_agent(OWNER, "cc-wrong", "gpt-4o-mini")
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client, agent, "never")
    assert caught.value.status_code == 502
    assert "credentials rejected" in caught.value.message
    assert "AADSTS7000215" in caught.value.message
    assert "not-the-secret-0000" not in server.log() + caught.value.message


def test_token_command_output_is_the_bearer_and_is_cached(
    server: Server, client: openai.OpenAI, fake: str
) -> None:
    agent = server.create_agent(OWNER, "cmd", "gpt-4o-mini")
    assert [_chat(client, agent, "a"), _chat(client, agent, "b")] == ["a", "b"]
    assert _runs(server, "cmd") == 1  # a plain token is kept 5 minutes
    last = [r for r in _records(fake) if r["path"].startswith("/openai/deployments/")][-1]
    assert last["headers"]["authorization"] == f"Bearer {STATIC_TOKEN}"


def test_az_json_token_is_renewed_before_its_expires_on(
    server: Server, client: openai.OpenAI
) -> None:
    agent = server.create_agent(OWNER, "az", "gpt-4o-mini")
    assert _chat(client, agent, "one") == "one"
    assert _chat(client, agent, "two") == "two"
    assert _runs(server, "az") == 1  # still fresh
    time.sleep(3.2)  # a token living 5-6 s is renewed at half its life
    assert _chat(client, agent, "three") == "three"
    assert _runs(server, "az") == 2


def test_a_hanging_token_command_is_stopped_at_its_timeout(
    server: Server, client: openai.OpenAI
) -> None:
    agent = server.create_agent(OWNER, "hang", "gpt-4o-mini")
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client, agent, "never")
    assert caught.value.status_code == 504
    assert "token_command did not finish within 1 s" in caught.value.message
    assert time.monotonic() - started < 10


def test_a_token_azure_refuses_is_dropped_and_the_next_call_fetches_anew(
    server: Server, client: openai.OpenAI, fake: str
) -> None:
    agent = server.create_agent(OWNER, "cc-revoked", "gpt-4o-mini")
    assert _chat(client, agent, "before") == "before"
    entra = {"tenant": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    httpx.put(f"{fake}/_entra", json=entra, timeout=10).raise_for_status()  # revokes all
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client, agent, "revoked")
    assert caught.value.status_code == 502 and "credentials rejected" in caught.value.message
    before = len(_token_fetches(fake))
    assert _chat(client, agent, "after") == "after"
    assert len(_token_fetches(fake)) == before + 1


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"token_command": "x", "api_key": "k"}, "remove api_key"),
        ({"token_command": "x", "tenant_id": "t"}, "not both"),
        ({"tenant_id": "t", "client_id": "c"}, "needs token_command"),
        ({"type": "openai", "token_command": "x"}, "for azure_openai"),
        ({"tenant_id": "t/../x", "client_id": "c", "client_secret": "s"}, "tenant_id"),
    ],
)
def test_incomplete_entra_settings_are_refused(settings: dict[str, Any], problem: str) -> None:
    base: dict[str, Any] = {"type": "azure_openai", "endpoint": "https://x.openai.azure.com"}
    with pytest.raises(ValidationError) as caught:
        ProviderSettings.model_validate({**base, "auth": "entra", **settings})
    assert problem in str(caught.value), json.dumps(settings)
