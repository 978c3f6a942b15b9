"""Sessions live on the server: a copied cookie dies with sign-out, "sign out everywhere",
a password change or the user being disabled, and sessions end when idle or old."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.server import running_server
from tests.web.conftest import Site, csrf_of, sign_in

ROW = re.compile(r'data-session="([0-9a-f]{64})"')


@pytest.fixture
def user(site: Site) -> Iterator[tuple[str, str]]:
    email = f"sess{time.monotonic_ns()}@example.com"
    site.add_user(email, "password-one-1")
    yield email, "password-one-1"


@contextmanager
def _signed_in(site: Site, email: str, password: str) -> Iterator[httpx.Client]:
    with site.client() as client:
        reply = sign_in(client, email, password)
        assert reply.status_code == 303, reply.text
        yield client


@contextmanager
def _copy(site: Site, source: httpx.Client) -> Iterator[httpx.Client]:
    """Another client holding the same cookie, as an attacker who copied it would."""
    with site.client() as thief:
        thief.cookies.update(source.cookies)
        yield thief


def _is_signed_in(client: httpx.Client) -> bool:
    reply = client.get("/agents")
    return reply.status_code == 200


def test_a_copied_cookie_dies_with_sign_out(site: Site, user: tuple[str, str]) -> None:
    with _signed_in(site, *user) as client, _copy(site, client) as thief:
        page = client.get("/agents").text
        csrf = csrf_of(page)
        assert _is_signed_in(thief)
        out = client.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert not _is_signed_in(thief)
        api = thief.get("/api/agents/v1/models", headers={"x-csrf-token": csrf})
        assert api.status_code == 401  # the API refuses the old cookie too
        # The old cookie's CSRF token is of no use either.
        post = thief.post("/settings/keys", data={"csrf_token": csrf, "name": "x", "expires": "7"})
        assert post.status_code in (303, 403) and "sk-" not in post.text


def test_settings_lists_sessions_and_signs_out_everywhere(
    site: Site, user: tuple[str, str]
) -> None:
    with _signed_in(site, *user) as laptop, _signed_in(site, *user) as phone:
        page = laptop.get("/settings/sessions")
        assert page.status_code == 200
        rows = ROW.findall(page.text)
        assert len(rows) == 2 and page.text.count("(this browser)") == 1
        ended = laptop.post("/settings/sessions/end-all", data={"csrf_token": csrf_of(page.text)})
        assert ended.status_code == 303 and "signed_out_everywhere" in ended.headers["location"]
        assert not _is_signed_in(laptop) and not _is_signed_in(phone)


def test_ending_one_other_session(site: Site, user: tuple[str, str]) -> None:
    with _signed_in(site, *user) as laptop, _signed_in(site, *user) as phone:
        phone_row = set(ROW.findall(phone.get("/settings/sessions").text))
        page = laptop.get("/settings/sessions").text
        current = re.search(r'data-session="([0-9a-f]{64})" data-current', page)
        assert current is not None
        (other,) = phone_row - {current.group(1)}
        reply = laptop.post(f"/settings/sessions/{other}/end", data={"csrf_token": csrf_of(page)})
        assert reply.status_code == 303
        assert _is_signed_in(laptop) and not _is_signed_in(phone)


def test_nobody_ends_another_users_session(site: Site, user: tuple[str, str]) -> None:
    other_email = f"other{time.monotonic_ns()}@example.com"
    site.add_user(other_email, "password-two-2")
    with _signed_in(site, *user) as victim, _signed_in(site, other_email, "password-two-2") as eve:
        (row,) = ROW.findall(victim.get("/settings/sessions").text)
        page = eve.get("/settings/sessions").text
        reply = eve.post(f"/settings/sessions/{row}/end", data={"csrf_token": csrf_of(page)})
        assert reply.status_code == 404
        assert _is_signed_in(victim)


def test_a_password_change_ends_every_session(site: Site, user: tuple[str, str]) -> None:
    email, _ = user
    with _signed_in(site, *user) as client:
        result = site.server.cli("users", "set-password", email, input="password-new-3\n")
        assert "1 web session(s) ended" in result.stdout
        assert not _is_signed_in(client)


def test_disabling_a_user_ends_their_sessions(site: Site, user: tuple[str, str]) -> None:
    email, password = user
    with _signed_in(site, *user) as client, site.client() as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        page = admin.get("/admin/users").text
        row = re.search(
            rf'data-user="{re.escape(email)}".*?/admin/users/(\w+)/disabled', page, re.S
        )
        assert row is not None
        path = f"/admin/users/{row.group(1)}/disabled"
        assert (
            admin.post(path, data={"csrf_token": csrf_of(page), "disabled": "1"}).status_code == 303
        )
        assert not _is_signed_in(client)
        admin.post(path, data={"csrf_token": csrf_of(page), "disabled": "0"})
        assert not _is_signed_in(client)  # enabling again does not revive the old session


@pytest.mark.timeout(120)
def test_sessions_end_when_idle_and_when_old(tmp_path: Path, upstream_url: str) -> None:
    # Margins wide enough for a loaded 2-core machine, where one page can take a second.
    lifetimes = {"web": {"session_idle_seconds": 3, "session_max_seconds": 8}}
    with running_server(tmp_path, upstream_url, lifetimes) as server:
        found = re.search(r"admin email:\s+(\S+)\s+admin password:\s+(\S+)", server.log())
        assert found
        site = Site(server, found.group(1), found.group(2))
        with _signed_in(site, site.admin_email, site.admin_password) as idle:
            time.sleep(4.0)
            assert not _is_signed_in(idle)
        with _signed_in(site, site.admin_email, site.admin_password) as busy:
            started = time.monotonic()
            while time.monotonic() - started < 6.0:
                assert _is_signed_in(busy)  # used every half second: never idle
                time.sleep(0.5)
            time.sleep(2.5)
            assert not _is_signed_in(busy)  # past the absolute lifetime
