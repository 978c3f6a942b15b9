"""Sign-in attempts are counted before the password is checked (atomically, per account
and per client address, in Redis when configured), and X-Forwarded-For counts only from
`trusted_proxies`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.billing.conftest import reachable
from tests.support.server import Server, running_server
from tests.web.conftest import CSRF_FIELD

RIGHT = "right-password-1"


async def attempts(
    server: Server, forms: list[dict[str, str]], headers: list[dict[str, str]]
) -> list[int]:
    """All at once, from one browser session; their statuses."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        token = CSRF_FIELD.search((await client.get("/login")).text)
        assert token
        for form in forms:
            form["csrf_token"] = token.group(1)
        replies = await asyncio.gather(
            *(client.post("/login", data=f, headers=h) for f, h in zip(forms, headers, strict=True))
        )
    return [reply.status_code for reply in replies]


def new_user(server: Server) -> str:
    email = f"guess-{secrets.token_hex(3)}@example.com"
    server.cli("users", "add", email, "--password-stdin", input=RIGHT + "\n")
    return email


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("throttle")) as server:
        yield server


def test_sixty_simultaneous_guesses_are_not_all_evaluated(plain: Server) -> None:
    email = new_user(plain)
    forms = [{"email": email, "password": f"wrong-{n}"} for n in range(59)]
    forms.append({"email": email, "password": RIGHT})
    statuses = asyncio.run(attempts(plain, forms, [{}] * 60))
    evaluated = [s for s in statuses if s != 429]
    assert len(evaluated) <= 5, statuses
    assert statuses.count(429) >= 55


def test_a_spoofed_forwarded_for_does_not_buy_new_attempts(plain: Server) -> None:
    # 25 accounts, one attempt each, each claiming another address: 20 per address.
    forms = [{"email": f"nobody{n}@example.com", "password": "x"} for n in range(25)]
    headers = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(25)]
    statuses = asyncio.run(attempts(plain, forms, headers))
    assert statuses.count(429) >= 5, statuses


def test_forwarded_for_counts_from_a_trusted_proxy(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "proxied", overrides={"trusted_proxies": ["127.0.0.1/32"]}
    ) as server:
        forms = [{"email": f"nobody{n}@example.com", "password": "x"} for n in range(25)]
        headers = [{"X-Forwarded-For": f"198.51.100.7, 203.0.113.{n}"} for n in range(25)]
        statuses = asyncio.run(attempts(server, forms, headers))
        assert 429 not in statuses, statuses  # each a different client behind the proxy
        same = [{"X-Forwarded-For": "203.0.113.99"}] * 25
        statuses = asyncio.run(attempts(server, [dict(f) for f in forms], same))
        assert statuses.count(429) >= 5, statuses


def test_the_count_is_shared_by_workers_through_redis(tmp_path: Path) -> None:
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    overrides = {"redis_url": "redis://127.0.0.1:6379/0"}
    with running_server(tmp_path / "redis", overrides=overrides, start=False) as server:
        server.start(workers=2)
        email = new_user(server)
        forms = [{"email": email, "password": f"wrong-{n}"} for n in range(30)]
        statuses = asyncio.run(attempts(server, forms, [{}] * 30))
        assert len([s for s in statuses if s != 429]) <= 5, statuses


def test_an_untrusted_forwarded_proto_does_not_mark_the_cookie_secure(plain: Server) -> None:
    reply = httpx.get(f"{plain.url}/login", headers={"x-forwarded-proto": "https"})
    assert "secure" not in reply.headers["set-cookie"].lower()
