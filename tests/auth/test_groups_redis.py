"""With Redis, a membership change reaches every server process at once: two servers on
one database, both holding a member's access in their caches; a change made by the CLI
(a third process) or on one server's admin page is seen by both on the next request,
long before their caches would expire."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agenthost.auth.permissions import AGENT_CACHE_TTL
from tests.auth.test_permissions import chat, get
from tests.billing.conftest import reachable
from tests.support.server import Server, free_port, running_server
from tests.test_cli import agenthost
from tests.web.conftest import csrf_of, sign_in

pytestmark = pytest.mark.redis
# Its own database: the sign-in throttle's counts of other tests (failed sign-ins from
# loopback) stay in database 0. Pub/sub channels are shared by all databases anyway.
REDIS_URL = "redis://127.0.0.1:6379/7"
# Well inside the cache bound: a server that missed the message still answers from cache.
AT_ONCE = 1.0


@dataclass
class Pair:
    one: Server
    two: Server
    admin: tuple[str, str]
    owner: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    folder: Path = tmp_path_factory.mktemp("groups-redis")
    with running_server(folder, None, {"redis_url": REDIS_URL}) as one:
        found = re.search(r"admin email:\s+(\S+)\s+admin password:\s+(\S+)", one.log())
        assert found, one.log()[-2000:]
        two = Server(folder=folder, config_path=one.config_path, port=free_port())
        two.log_path = folder / "second.log"
        two.start()
        one.add_user("owner@example.com")
        try:
            yield Pair(one, two, (found.group(1), found.group(2)), "owner@example.com")
        finally:
            two.stop()


def callable_on(server: Server, key: str, agent: str) -> bool:
    found = get(server, key, f"/models/{agent}").status_code == 200
    called = chat(server, key, agent).status_code == 200
    assert found == called
    return found


def member_with_cached_access(pair: Pair) -> tuple[str, str, str, str]:
    """(group, member email, key, agent), the member's access cached on both servers."""
    group, email = f"team {secrets.token_hex(3)}", f"m-{secrets.token_hex(3)}@example.com"
    pair.one.add_user(email)
    key = pair.one.create_key(email)
    pair.one.cli("groups", "create", group)
    pair.one.cli("groups", "add", group, email)
    agent = pair.one.create_agent(pair.owner, "scripted", "m", "--share-remote", f"group:{group}")
    return group, email, key, agent


def assert_refused_at_once(pair: Pair, key: str, agent: str, warmed_at: float) -> None:
    """Each server refuses within AT_ONCE of the change, and before its cached answer
    (read at `warmed_at`) could have been re-read."""
    changed_at = time.monotonic()
    for server in (pair.one, pair.two):
        while callable_on(server, key, agent):
            assert time.monotonic() - changed_at < AT_ONCE, f"{server.url} still allows"
            time.sleep(0.05)
    assert time.monotonic() - warmed_at < AGENT_CACHE_TTL / 2, "too slow to show anything"


def test_a_cli_membership_change_reaches_both_servers_at_once(pair: Pair) -> None:
    group, email, key, agent = member_with_cached_access(pair)
    config = pair.one.config_path
    agenthost(config, "groups", "remove", group, email)  # warm up this process's imports
    agenthost(config, "groups", "add", group, email)
    time.sleep(AGENT_CACHE_TTL)  # let caches from before settle on "allowed"
    for server in (pair.one, pair.two):
        while not callable_on(server, key, agent):
            time.sleep(0.2)
    warmed_at = time.monotonic()

    removed = agenthost(config, "groups", "remove", group, email)  # the CLI, in this process

    assert removed.returncode == 0 and "note:" not in removed.stderr, removed.stderr
    assert_refused_at_once(pair, key, agent, warmed_at)


def test_a_change_on_one_servers_admin_page_reaches_the_other_at_once(pair: Pair) -> None:
    group, email, key, agent = member_with_cached_access(pair)
    with httpx.Client(base_url=pair.one.url, timeout=30) as admin:
        assert sign_in(admin, *pair.admin).status_code == 303
        page = admin.get("/admin/groups").text
        group_id = re.search(rf'data-group="{group}".*?/admin/groups/(grp_\w+)/delete', page, re.S)
        assert group_id is not None
        token = csrf_of(page)
        assert callable_on(pair.one, key, agent) and callable_on(pair.two, key, agent)
        warmed_at = time.monotonic()

        deleted = admin.post(
            f"/admin/groups/{group_id.group(1)}/delete", data={"csrf_token": token}
        )

        assert deleted.status_code == 303
        assert_refused_at_once(pair, key, agent, warmed_at)
