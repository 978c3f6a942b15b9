"""Who may call which agent: owners, user/role/public grants, key scopes, and the role's
`use` permission. An agent a key may not see is indistinguishable from a missing one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.server import Server, running_server

UNKNOWN_AGENT = "agent_" + "x" * 21


def get(server: Server, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.api}{path}", headers={"Authorization": f"Bearer {key}"})


def chat(server: Server, key: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(
        f"{server.api}/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body
    )


def listed(server: Server, key: str) -> set[str]:
    response = get(server, key, "/models")
    assert response.status_code == 200
    return {m["id"] for m in response.json()["data"]}


def assert_looks_missing(response: httpx.Response, agent_id: str, server: Server, key: str) -> None:
    """The same status and body (bar the id) as for an agent that does not exist."""
    assert response.status_code == 404
    missing = get(server, key, f"/models/{UNKNOWN_AGENT}").json()
    expected = str(missing).replace(UNKNOWN_AGENT, agent_id)
    assert str(response.json()) == expected
    assert response.json()["error"]["code"] == "model_not_found"


def test_models_lists_exactly_own_agents(server: Server, alice: Tenant, bob: Tenant) -> None:
    assert {alice.scripted_agent, alice.fake_agent} <= listed(server, alice.key)
    assert not {bob.scripted_agent, bob.fake_agent} & listed(server, alice.key)
    assert get(server, alice.key, f"/models/{alice.scripted_agent}").json()["id"] == (
        alice.scripted_agent
    )


def test_another_users_private_agent_cannot_be_listed_called_or_guessed(
    server: Server, alice: Tenant, bob: Tenant
) -> None:
    private = alice.scripted_agent
    assert private not in listed(server, bob.key)
    assert_looks_missing(get(server, bob.key, f"/models/{private}"), private, server, bob.key)
    response = chat(server, bob.key, private)
    assert response.status_code == 404
    unknown = chat(server, bob.key, UNKNOWN_AGENT).json()
    assert str(response.json()) == str(unknown).replace(UNKNOWN_AGENT, private)
    assert chat(server, alice.key, private).status_code == 200


def test_user_role_and_public_grants(server: Server, alice: Tenant, bob: Tenant) -> None:
    server.add_user("carol@example.com")
    carol_key = server.create_key("carol@example.com")
    for_bob = server.create_agent(
        alice.email, "scripted", "m", "--share-remote", f"user:{bob.email}"
    )
    for_users = server.create_agent(alice.email, "scripted", "m", "--share-remote", "role:user")
    for_admins = server.create_agent(alice.email, "scripted", "m", "--share-remote", "role:admin")
    for_all = server.create_agent(alice.email, "scripted", "m", "--share-remote", "public")
    ours = {for_bob, for_users, for_admins, for_all}
    assert listed(server, bob.key) & ours == {for_bob, for_users, for_all}
    assert listed(server, carol_key) & ours == {for_users, for_all}
    assert chat(server, bob.key, for_bob).json()["choices"][0]["message"]["content"] == (
        "echo: hello"
    )
    assert chat(server, carol_key, for_users).status_code == 200
    assert_looks_missing(chat(server, carol_key, for_bob), for_bob, server, carol_key)
    assert_looks_missing(
        get(server, carol_key, f"/models/{for_admins}"), for_admins, server, carol_key
    )


def test_agent_scoped_key_sees_and_calls_only_its_agents(server: Server, alice: Tenant) -> None:
    scoped = server.create_key(alice.email, "--agents", alice.scripted_agent)
    assert listed(server, scoped) == {alice.scripted_agent}
    assert chat(server, scoped, alice.scripted_agent).status_code == 200
    assert_looks_missing(chat(server, scoped, alice.fake_agent), alice.fake_agent, server, scoped)


@pytest.fixture(scope="module")
def no_use_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    overrides = {"interface": {"remote_agents": {"use": False}}, "log_level": "debug"}
    folder: Path = tmp_path_factory.mktemp("no-use")
    with running_server(folder, None, overrides) as srv:
        yield srv


def test_role_without_use_gets_403_and_admins_keep_access(no_use_server: Server) -> None:
    server = no_use_server
    server.add_user("user@example.com")
    user_key = server.create_key("user@example.com")
    server.add_user("boss@example.com", "admin")
    admin_key = server.create_key("boss@example.com")
    admin_agent = server.create_agent("boss@example.com", "scripted", "m")
    for response in (get(server, user_key, "/models"), chat(server, user_key, admin_agent)):
        assert response.status_code == 403
        assert response.json()["error"] == {
            "message": response.json()["error"]["message"],
            "type": "permission_error",
            "param": None,
            "code": "remote_agents_disabled",
        }
    assert admin_agent in listed(server, admin_key)
    assert chat(server, admin_key, admin_agent).status_code == 200
    # At debug level too, keys stay out of the log.
    log = server.log()
    assert user_key not in log and admin_key not in log
