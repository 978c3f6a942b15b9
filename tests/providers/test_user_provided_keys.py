"""`user_provided: true` providers: each caller's own key (set with the CLI or on
Settings → Provider keys) goes upstream, on shared agents too; a caller without one gets
400 `missing_provider_key` before anything goes upstream; keys never show; and
`bill_usage: false` records usage without charging it."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import Server, running_server
from tests.web.conftest import csrf_of, sign_in

OWNER, CALLER = "byok-owner@example.com", "byok-caller@example.com"
CALLER_PASSWORD = "caller-password-1"


@dataclass
class Byok:
    server: Server
    upstream_url: str
    shared: str  # OWNER's agent on `byok`, shared with CALLER
    free: str  # OWNER's agent on `byok-free` (bill_usage: false)
    keys: dict[str, str]  # agenthost API keys by email

    def ask(self, email: str, agent: str, text: str) -> Any:
        with openai.OpenAI(base_url=self.server.api, api_key=self.keys[email], max_retries=0) as c:
            return c.chat.completions.create(
                model=agent, messages=[{"role": "user", "content": text}]
            )

    def upstream_saw(self, marker: str) -> list[dict[str, Any]]:
        seen = httpx.get(self.upstream_url.removesuffix("/v1") + "/_requests", timeout=10)
        return [r for r in seen.json() if marker in str(r.get("body"))]


@pytest.fixture(scope="module")
def byok(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Byok]:
    base = {"type": "openai", "base_url": upstream_url, "user_provided": True, "max_retries": 0}
    overrides = {
        "providers": {"byok": base, "byok-free": {**base, "bill_usage": False}},
        "pricing": {"gpt-byok": {"input": 1.0, "output": 1.0}},
    }
    folder = tmp_path_factory.mktemp("byok")
    with running_server(folder, None, overrides) as server:
        server.add_user(OWNER)
        server.cli("users", "add", CALLER, "--password-stdin", input=CALLER_PASSWORD + "\n")
        shared = server.create_agent(OWNER, "byok", "gpt-byok", "--share-remote", f"user:{CALLER}")
        free = server.create_agent(OWNER, "byok-free", "gpt-byok")
        keys = {email: server.create_key(email) for email in (OWNER, CALLER)}
        yield Byok(server, upstream_url, shared, free, keys)


def provider_key() -> str:
    return "sk-byok-" + secrets.token_hex(16)


def test_a_caller_without_a_key_is_refused_before_anything_goes_upstream(byok: Byok) -> None:
    marker = "m" + secrets.token_hex(5)
    with pytest.raises(openai.BadRequestError) as caught:
        byok.ask(CALLER, byok.shared, f"!text {marker}")
    error = caught.value.response.json()["error"]
    assert error["code"] == "missing_provider_key" and "'byok'" in error["message"]
    assert byok.upstream_saw(marker) == []


def test_each_caller_s_own_key_goes_upstream_on_a_shared_agent(byok: Byok) -> None:
    owner_key, caller_key = provider_key(), provider_key()
    done = byok.server.cli(
        "provider-keys", "set", OWNER, "byok", "--key-stdin", input=owner_key + "\n"
    )
    assert owner_key not in done.stdout + done.stderr
    with httpx.Client(base_url=byok.server.url, timeout=30) as web:
        assert sign_in(web, CALLER, CALLER_PASSWORD).status_code == 303
        page = web.get("/settings/provider-keys")
        form = {"csrf_token": csrf_of(page.text), "provider": "byok", "key": caller_key}
        assert web.post("/settings/provider-keys", data=form).status_code == 303
        shown = web.get("/settings/provider-keys").text
    assert caller_key not in shown and "…" + caller_key[-4:] in shown
    for email, key in ((OWNER, owner_key), (CALLER, caller_key)):
        marker = "m" + secrets.token_hex(5)
        assert byok.ask(email, byok.shared, f"!text {marker}").choices[0].message.content
        (seen,) = byok.upstream_saw(marker)
        assert seen["headers"]["authorization"] == f"Bearer {key}", email
    log = byok.server.log()
    assert owner_key not in log and caller_key not in log
    listed = byok.server.cli("provider-keys", "list", OWNER).stdout
    assert listed.startswith("byok\t") and owner_key not in listed


def test_a_key_of_any_shape_echoed_by_the_upstream_never_shows(byok: Byok) -> None:
    # Azure-like: 32 hex characters, nothing a pattern would recognise as a key.
    odd_key, email = secrets.token_hex(16), "byok-odd@example.com"
    byok.server.add_user(email)  # new: no cached keys (a CLI change shows within 5 s)
    byok.keys[email] = byok.server.create_key(email)
    agent = byok.server.create_agent(email, "byok", "gpt-byok")
    byok.server.cli("provider-keys", "set", email, "byok", "--key-stdin", input=odd_key + "\n")
    marker = "m" + secrets.token_hex(5)
    with pytest.raises(openai.APIStatusError) as caught:
        byok.ask(email, agent, f"{marker}\n!http 401")
    (seen,) = byok.upstream_saw(marker)
    assert seen["headers"]["authorization"] == f"Bearer {odd_key}"
    error = caught.value.response.json()["error"]
    assert "incorrect key ***" in error["message"], error
    assert odd_key not in caught.value.response.text
    assert odd_key not in byok.server.log()


def test_a_sub_agent_s_provider_gets_the_caller_s_own_key_for_it(byok: Byok) -> None:
    """Agent graphs: a parent on another provider calls a sub-agent on `byok`; the child's
    call carries the caller's key for `byok`, and a caller without one is refused first."""
    tree: dict[str, tuple[str, str]] = {}
    for who in ("keyed", "keyless"):
        email = f"byok-{who}-{secrets.token_hex(3)}@example.com"
        byok.server.add_user(email)
        byok.keys[email] = byok.server.create_key(email)
        child = byok.server.create_agent(email, "byok", "gpt-byok")
        parent = byok.server.create_agent(email, "scripted", "m", "--subagents", child)
        tree[who] = (email, parent)
    key = provider_key()
    email, parent = tree["keyed"]
    byok.server.cli("provider-keys", "set", email, "byok", "--key-stdin", input=key + "\n")
    marker = "m" + secrets.token_hex(5)
    reply = byok.ask(email, parent, f'!call test_agent {{"input": "{marker}"}}')
    assert reply.choices[0].message.content.startswith("result: ")
    (seen,) = byok.upstream_saw(marker)
    assert seen["headers"]["authorization"] == f"Bearer {key}"
    email, parent = tree["keyless"]
    marker = "m" + secrets.token_hex(5)
    with pytest.raises(openai.BadRequestError) as caught:
        byok.ask(email, parent, f'!call test_agent {{"input": "{marker}"}}')
    error = caught.value.response.json()["error"]
    assert error["code"] == "missing_provider_key" and "'byok'" in error["message"]
    assert byok.upstream_saw(marker) == []
    assert key not in byok.server.log()


def test_usage_is_recorded_and_charged_unless_bill_usage_is_false(byok: Byok) -> None:
    byok.server.cli("provider-keys", "set", OWNER, "byok-free", "--key-stdin", input=provider_key())
    byok.server.cli("provider-keys", "set", OWNER, "byok", "--key-stdin", input=provider_key())
    # A key set by the CLI (another process) reaches the server's 5 s cache of keys.
    deadline = time.monotonic() + 8
    while True:
        try:
            byok.ask(OWNER, byok.free, "!text free of charge")
            break
        except openai.BadRequestError:
            assert time.monotonic() < deadline, "the CLI's key never applied"
            time.sleep(0.5)
    byok.ask(OWNER, byok.shared, "!text charged")
    rows = byok.server.cli("balance", "show", OWNER, "--last", "2").stdout.splitlines()[1:]
    by_agent = {line.split("\t")[5]: line.split("\t") for line in rows}
    assert by_agent[byok.free][2] == "+0" and "out 3" in by_agent[byok.free][4]
    assert int(by_agent[byok.shared][2]) < 0  # priced: charged to the caller's balance


def test_cli_errors_are_one_line(byok: Byok) -> None:
    wrong = byok.server.cli(
        "provider-keys", "set", OWNER, "fake", "--key-stdin", input="x\n", check=False
    )
    assert wrong.returncode != 0 and "not a user-provided provider" in wrong.stderr
    missing = byok.server.cli("provider-keys", "delete", CALLER, "byok-free", check=False)
    assert missing.returncode != 0 and "has no key" in missing.stderr
    assert re.search(
        r"deleted the byok key", byok.server.cli("provider-keys", "delete", CALLER, "byok").stdout
    )


def test_a_user_provided_provider_with_a_configured_key_is_refused(tmp_path: Any) -> None:
    bad = {"providers": {"x": {"type": "openai", "user_provided": True, "api_key": "sk-1"}}}
    with running_server(tmp_path, None, bad, start=False) as server:
        done = server.cli("users", "list", check=False)
    assert done.returncode != 0 and "providers.x" in done.stderr and "api_key" in done.stderr
