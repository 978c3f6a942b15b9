"""Group shares against a running server, changed with the CLI: a member lists and calls
the agent with their own key, anyone else gets the 404 of a missing agent, and a
membership change or a deleted group holds within the cache bound (no Redis here)."""

from __future__ import annotations

import secrets
import time

from agenthost.auth.permissions import AGENT_CACHE_TTL
from tests.auth.test_permissions import assert_looks_missing, chat, get, listed
from tests.conftest import Tenant
from tests.support.server import Server

# The cache's bound, plus a request's scheduling slack on a busy machine.
BOUND = AGENT_CACHE_TTL + 1.0


def may_call(server: Server, key: str, agent: str) -> tuple[bool, bool, bool]:
    """(listed by /models, found by /models/{id}, answered by chat)."""
    return (
        agent in listed(server, key),
        get(server, key, f"/models/{agent}").status_code == 200,
        chat(server, key, agent).status_code == 200,
    )


def wait_for(server: Server, key: str, agent: str, allowed: bool) -> float:
    """Seconds until every way of reaching the agent agrees with `allowed`."""
    started = time.monotonic()
    while may_call(server, key, agent) != (allowed, allowed, allowed):
        elapsed = time.monotonic() - started
        assert elapsed < BOUND, f"still {'refused' if allowed else 'allowed'} after {elapsed:.1f} s"
        time.sleep(0.2)
    return time.monotonic() - started


def shared_agent(server: Server, owner: Tenant) -> tuple[str, str]:
    group = f"group {secrets.token_hex(3)}"
    server.cli("groups", "create", group)
    agent = server.create_agent(owner.email, "scripted", "m", "--share-remote", f"group:{group}")
    return group, agent


def test_a_member_lists_and_calls_a_group_agent_and_others_see_nothing(
    server: Server, alice: Tenant, bob: Tenant
) -> None:
    group, agent = shared_agent(server, alice)
    assert agent not in listed(server, bob.key)
    assert_looks_missing(get(server, bob.key, f"/models/{agent}"), agent, server, bob.key)
    assert_looks_missing(chat(server, bob.key, agent), agent, server, bob.key)  # cached now

    server.cli("groups", "add", group, bob.email)
    wait_for(server, bob.key, agent, True)
    reply = chat(server, bob.key, agent).json()
    assert reply["choices"][0]["message"]["content"] == "echo: hello"
    assert may_call(server, alice.key, agent) == (True, True, True)  # the owner, as ever

    server.cli("groups", "remove", group, bob.email)
    wait_for(server, bob.key, agent, False)
    assert_looks_missing(chat(server, bob.key, agent), agent, server, bob.key)


def test_deleting_a_group_revokes_its_shares(server: Server, alice: Tenant) -> None:
    email = f"member-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    key = server.create_key(email)
    group, agent = shared_agent(server, alice)
    server.cli("groups", "add", group, email)
    wait_for(server, key, agent, True)  # and cached as callable

    out = server.cli("groups", "delete", group).stdout
    assert "unshared from 1 agent(s)" in out
    wait_for(server, key, agent, False)
    assert_looks_missing(chat(server, key, agent), agent, server, key)
    listed_agents = server.cli("agents", "list").stdout
    assert f"group:{group}" not in listed_agents
