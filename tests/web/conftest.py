"""A dedicated agenthost for web tests, started on an empty database (first-start admin)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.server import Server, running_server
from tests.web.chromium import ARGS, CHROMIUM, SHOTS

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
REVEALED = re.compile(r'id="revealed-key"[^>]*value="(sk-[0-9a-f]{64})"')


@dataclass
class Site:
    server: Server
    admin_email: str
    admin_password: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    def add_user(self, email: str, password: str, role: str = "user") -> None:
        """Through the admin page: faster than the CLI and exercises the form."""
        with self.client() as admin:
            sign_in(admin, self.admin_email, self.admin_password)
            token = csrf_of(admin.get("/admin/users").text)
            form = {"csrf_token": token, "email": email, "password": password, "role": role}
            reply = admin.post("/admin/users", data=form)
            assert reply.status_code == 303, reply.text

    def create_key(self, email: str, password: str) -> str:
        with self.client() as user:
            sign_in(user, email, password)
            token = csrf_of(user.get("/settings/keys").text)
            reply = user.post(
                "/settings/keys",
                data={"csrf_token": token, "name": "test", "expires": "7"},
                follow_redirects=True,
            )
            found = REVEALED.search(reply.text)
            assert found, reply.text
            return found.group(1)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"}
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Site]:
    proxied = {"trusted_proxies": ["127.0.0.1"]}  # as behind a TLS-terminating proxy
    with running_server(tmp_path_factory.mktemp("web"), upstream_url, proxied) as server:
        found = re.search(r"admin email:\s+(\S+)\s+admin password:\s+(\S+)", server.log())
        assert found, f"first start printed no admin: {server.log()[-2000:]}"
        yield Site(server, found.group(1), found.group(2))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for one test module (its tests open their own contexts)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield found
        found.close()
