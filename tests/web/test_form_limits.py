"""A form post over the web body limit (1 MiB) gets an HTML 413 page naming the limit and
linking back to the form, whether the body declares its length or arrives chunked; the
API keeps its own limit and its JSON error shape."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.web.conftest import Site, csrf_of, sign_in

TWO_MB = 2_000_000


@pytest.fixture(scope="module")
def admin(site: Site) -> Iterator[httpx.Client]:
    with site.client() as client:
        sign_in(client, site.admin_email, site.admin_password)
        yield client


@pytest.fixture(scope="module")
def agent_id(admin: httpx.Client) -> str:
    token = csrf_of(admin.get("/agents/new").text)
    form = {"csrf_token": token, "name": "Limits", "provider": "scripted", "model": "m"}
    made = admin.post("/agents/new", data=form)
    assert made.status_code == 303
    return str(made.headers["location"]).split("/agents/")[1].split("?")[0]


def assert_too_large_page(reply: httpx.Response, back: str) -> None:
    assert reply.status_code == 413, reply.text[:300]
    assert reply.headers["content-type"].startswith("text/html")
    assert "Form too large" in reply.text and "1 MiB (1,048,576 bytes)" in reply.text
    assert f'<a href="{back}" id="back-to-form">' in reply.text
    assert "content-security-policy" in reply.headers


# (page the form is on, where it posts)
FORMS = [
    ("/login", "/login"),
    ("/agents/new", "/agents/new"),
    ("/agents/{agent}", "/agents/{agent}"),
    ("/agents/{agent}", "/agents/{agent}/shares"),
    ("/settings/keys", "/settings/keys"),
    ("/settings/secrets", "/settings/secrets"),
    ("/admin/users", "/admin/users"),
    ("/admin/permissions", "/admin/permissions"),
]


@pytest.mark.parametrize(("page", "action"), FORMS, ids=[f[1] for f in FORMS])
def test_a_two_megabyte_form_post_is_an_html_413_linking_back(
    site: Site, admin: httpx.Client, agent_id: str, page: str, action: str
) -> None:
    page, action = page.format(agent=agent_id), action.format(agent=agent_id)
    token = csrf_of(admin.get("/agents").text)  # (the limit is checked before the token)
    form = {"csrf_token": token, "name": "x", "instructions": "i" * TWO_MB}
    referred = admin.post(action, data=form, headers={"referer": f"{site.server.url}{page}"})
    assert_too_large_page(referred, page)
    # Without a referrer the link goes to the nearest page above the post's path.
    assert_too_large_page(admin.post(action, data=form), page)
    assert admin.get(page).status_code in (200, 303)  # the server is fine


def test_a_chunked_form_post_over_the_limit_is_the_same_page(admin: httpx.Client) -> None:
    token = csrf_of(admin.get("/agents/new").text)
    body = urlencode({"csrf_token": token, "name": "x", "instructions": "i" * TWO_MB}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    headers = {"content-type": "application/x-www-form-urlencoded"}
    reply = admin.post("/agents/new", content=chunks(), headers=headers)
    assert "content-length" not in reply.request.headers
    assert_too_large_page(reply, "/agents/new")


def test_a_multipart_form_over_the_limit_is_the_same_page(admin: httpx.Client) -> None:
    token = csrf_of(admin.get("/settings/keys").text)
    files = {"name": (None, "k" * TWO_MB)}
    reply = admin.post("/settings/keys", data={"csrf_token": token}, files=files)
    assert_too_large_page(reply, "/settings/keys")


def test_a_referrer_from_elsewhere_is_not_linked(admin: httpx.Client) -> None:
    token = csrf_of(admin.get("/agents/new").text)
    form = {"csrf_token": token, "instructions": "i" * TWO_MB}
    for referrer in ("https://evil.example/agents", "//evil.example/x"):
        reply = admin.post("/agents/new", data=form, headers={"referer": referrer})
        assert_too_large_page(reply, "/agents/new")


def test_the_api_keeps_its_limit_and_its_json_shape(site: Site) -> None:
    api = site.server.api
    under = httpx.post(f"{api}/chat/completions", content=b"x" * TWO_MB, timeout=30)
    assert under.status_code == 401  # 2 MB is within the API's limit: refused for the key
    over = httpx.post(f"{api}/chat/completions", content=b"x" * 3_200_000, timeout=30)
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "request_too_large"
