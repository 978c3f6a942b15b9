"""Every web page, error pages included, carries the security headers; the API does not
need them and is left alone."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import Response

from agenthost.web.security_headers import protect
from tests.web.conftest import Site, sign_in

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _check(reply: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert reply.headers.get(name) == value, (reply.url, name)
    policy = reply.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    script = next(p for p in policy.split("; ") if p.startswith("script-src"))
    assert script == "script-src 'self'", "no unsafe-inline or foreign scripts"


@pytest.mark.parametrize("path", ["/login", "/no-such-page"])
def test_pages_for_visitors(site: Site, path: str) -> None:
    _check(httpx.get(site.server.url + path, timeout=30))


def test_pages_for_a_signed_in_admin(site: Site) -> None:
    with site.client() as client:
        sign_in(client, site.admin_email, site.admin_password)
        for path in (
            "/agents",
            "/agents/new",
            "/usage",
            "/playground",
            "/settings/keys",
            "/settings/secrets",
            "/settings/sessions",
            "/admin/users",
            "/admin/audit",
            "/agents/agent_doesnotexist",  # a 404 page
        ):
            reply = client.get(path)
            assert reply.headers["content-type"].startswith("text/html"), path
            _check(reply)
        assert "strict-transport-security" not in client.get("/agents").headers


def test_hsts_only_when_served_over_https() -> None:
    assert "strict-transport-security" not in protect(Response(), "http://agents.local").headers
    secured = protect(Response(), "https://agents.example.com").headers
    assert secured["strict-transport-security"].startswith("max-age=31536000")
