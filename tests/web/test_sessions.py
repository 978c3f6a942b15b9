"""Sessions, CSRF, throttling, HTML errors and admin overrides, over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from agenthost.web import reveal
from tests.web.conftest import REVEALED, Site, csrf_of, sign_in


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with site.client() as c:
        yield c


def test_first_start_admin_can_sign_in_and_sign_out(site: Site, client: httpx.Client) -> None:
    reply = sign_in(client, site.admin_email, site.admin_password)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    page = client.get("/agents")
    assert page.status_code == 200 and site.admin_email in page.text
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert client.get("/agents").status_code == 303  # back to the sign-in page


def test_session_cookie_is_httponly_lax_and_secure_behind_tls(site: Site) -> None:
    plain = httpx.get(f"{site.server.url}/login")
    cookie = plain.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    # The site trusts loopback as its proxy (trusted_proxies), so X-Forwarded-Proto counts.
    tls = httpx.get(f"{site.server.url}/login", headers={"x-forwarded-proto": "https"})
    assert "secure" in tls.headers["set-cookie"].lower()


def test_posts_without_csrf_token_are_refused(site: Site, client: httpx.Client) -> None:
    sign_in(client, site.admin_email, site.admin_password)
    bare = client.post("/settings/keys", data={"name": "sneaky", "expires": "7"})
    assert bare.status_code == 403 and "security token" in bare.text
    wrong = client.post(
        "/settings/keys", data={"name": "x", "expires": "7", "csrf_token": "0" * 64}
    )
    assert wrong.status_code == 403
    login = client.post("/login", data={"email": site.admin_email, "password": "x"})
    assert login.status_code == 403


def test_login_is_throttled_after_five_failures(site: Site, client: httpx.Client) -> None:
    site.add_user("throttled@example.com", "right-password-1")
    statuses = []
    for _ in range(6):
        token = csrf_of(client.get("/login").text)
        reply = client.post(
            "/login",
            data={"email": "throttled@example.com", "password": "wrong", "csrf_token": token},
        )
        statuses.append(reply.status_code)
    assert statuses == [400] * 5 + [429]
    # Even the right password is refused while throttled.
    assert sign_in(client, "throttled@example.com", "right-password-1").status_code == 429


def test_unknown_web_route_is_an_html_page_and_api_stays_json(site: Site) -> None:
    page = httpx.get(f"{site.server.url}/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = httpx.get(f"{site.server.url}/api/agents/v1/no-such-route")
    assert api.status_code == 404 and api.json()["error"]["type"] == "not_found_error"


def test_non_admin_cannot_open_admin_pages(site: Site, client: httpx.Client) -> None:
    site.add_user("plain@example.com", "plain-password-1")
    sign_in(client, "plain@example.com", "plain-password-1")
    for path in ("/admin/users", "/admin/permissions", "/admin/health"):
        assert client.get(path).status_code == 403, path
    token = csrf_of(client.get("/agents").text)
    grant = client.post("/admin/users", data={"csrf_token": token, "email": "x@example.com"})
    assert grant.status_code == 403


def test_role_permission_override_reaches_the_api(site: Site, client: httpx.Client) -> None:
    site.add_user("perm@example.com", "perm-password-1")
    key = site.create_key("perm@example.com", "perm-password-1")
    api = openai.OpenAI(base_url=site.server.api, api_key=key, max_retries=0)
    assert api.models.list().data == []
    sign_in(client, site.admin_email, site.admin_password)
    token = csrf_of(client.get("/admin/permissions").text)
    off = {"csrf_token": token, "user.create": "on"}  # "use" unchecked
    assert client.post("/admin/permissions", data=off).status_code == 303
    try:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            api.models.list()
        assert denied.value.body["code"] == "remote_agents_disabled"  # type: ignore[index]
    finally:
        on = {"csrf_token": token, "user.use": "on", "user.create": "on"}
        assert client.post("/admin/permissions", data=on).status_code == 303
    assert api.models.list().data == []


def test_disabling_a_user_stops_their_key_at_once(site: Site, client: httpx.Client) -> None:
    site.add_user("leaver@example.com", "leaver-password-1")
    key = site.create_key("leaver@example.com", "leaver-password-1")
    api = openai.OpenAI(base_url=site.server.api, api_key=key, max_retries=0)
    api.models.list()  # now cached by the server
    sign_in(client, site.admin_email, site.admin_password)
    page = client.get("/admin/users").text
    user_id = (
        page.split('data-user="leaver@example.com"')[1].split("/admin/users/")[1].split("/")[0]
    )
    reply = client.post(
        f"/admin/users/{user_id}/disabled", data={"csrf_token": csrf_of(page), "disabled": "1"}
    )
    assert reply.status_code == 303
    with pytest.raises(openai.AuthenticationError):
        api.models.list()


def test_browser_session_calls_api_only_with_csrf_header(site: Site, client: httpx.Client) -> None:
    sign_in(client, site.admin_email, site.admin_password)
    token = csrf_of(client.get("/agents").text)
    without = client.get("/api/agents/v1/models")
    assert without.status_code == 401
    with_header = client.get("/api/agents/v1/models", headers={"x-csrf-token": token})
    assert with_header.status_code == 200 and with_header.json()["object"] == "list"


def _new_agent(client: httpx.Client, name: str) -> str:
    token = csrf_of(client.get("/agents/new").text)
    form = {
        "csrf_token": token,
        "name": name,
        "provider": "scripted",
        "model": "scripted-model",
        "params": '{"temperature": 0.2}',
    }
    reply = client.post("/agents/new", data=form)
    assert reply.status_code == 303, reply.text
    return str(reply.headers["location"]).split("/agents/")[1].split("?")[0]


def test_sharing_an_agent_reaches_the_api_at_once(site: Site, client: httpx.Client) -> None:
    site.add_user("sharer@example.com", "sharer-password-1")
    site.add_user("friend@example.com", "friend-password-1")
    friend = openai.OpenAI(
        base_url=site.server.api,
        api_key=site.create_key("friend@example.com", "friend-password-1"),
        max_retries=0,
    )
    sign_in(client, site.admin_email, site.admin_password)  # admins may share
    agent_id = _new_agent(client, "Shared agent")
    assert agent_id not in {m.id for m in friend.models.list().data}
    token = csrf_of(client.get(f"/agents/{agent_id}").text)
    share = {"csrf_token": token, "kind": "user", "subject": "friend@example.com"}
    assert client.post(f"/agents/{agent_id}/shares", data=share).status_code == 303
    assert agent_id in {m.id for m in friend.models.list().data}
    grant = {k: v for k, v in share.items()}
    grant["subject"] = client.get(f"/agents/{agent_id}").text.split('name="subject" value="')[1]
    grant["subject"] = grant["subject"].split('"')[0]
    assert client.post(f"/agents/{agent_id}/shares/remove", data=grant).status_code == 303
    with pytest.raises(openai.NotFoundError):
        friend.models.retrieve(agent_id)


def test_agent_edit_duplicate_and_delete(site: Site, client: httpx.Client) -> None:
    sign_in(client, site.admin_email, site.admin_password)
    agent_id = _new_agent(client, "Editable")
    token = csrf_of(client.get(f"/agents/{agent_id}").text)
    bad = client.post(
        f"/agents/{agent_id}",
        data={
            "csrf_token": token,
            "name": "Edited",
            "provider": "scripted",
            "model": "m",
            "params": '{"nonsense": 1}',
        },
    )
    assert bad.status_code == 400 and "unknown; known" in bad.text
    good = client.post(
        f"/agents/{agent_id}",
        data={"csrf_token": token, "name": "Edited", "provider": "scripted", "model": "m"},
    )
    assert good.status_code == 303 and "Edited" in client.get(f"/agents/{agent_id}").text
    copy = client.post(f"/agents/{agent_id}/duplicate", data={"csrf_token": token})
    copy_id = str(copy.headers["location"]).split("/agents/")[1].split("?")[0]
    assert copy_id != agent_id and "Edited (copy)" in client.get(f"/agents/{copy_id}").text
    assert client.post(f"/agents/{copy_id}/delete", data={"csrf_token": token}).status_code == 303
    assert client.get(f"/agents/{copy_id}").status_code == 404


def test_admin_grants_credits(site: Site, client: httpx.Client) -> None:
    site.add_user("granted@example.com", "granted-password-1")
    sign_in(client, site.admin_email, site.admin_password)
    page = client.get("/admin/users").text
    user_id = page.split('data-user="granted@example.com"')[1].split("/admin/users/")[1]
    user_id = user_id.split("/")[0]
    form = {"csrf_token": csrf_of(page), "credits": "1234", "note": "welcome"}
    assert client.post(f"/admin/users/{user_id}/credits", data=form).status_code == 303
    with site.client() as user:
        sign_in(user, "granted@example.com", "granted-password-1")
        usage = user.get("/usage").text
    assert "50,001,234" in usage and "welcome" in usage


@pytest.mark.parametrize(
    "path",
    [
        "/usage?page=99999999999999999999999",
        "/usage?page=-5",
        "/usage?days=abc",
        "/usage?page=abc",
        "/admin/usage?days=abc",
        "/usage.csv?days=1e9",
    ],
)
def test_odd_query_strings_never_500_and_stay_html(
    site: Site, client: httpx.Client, path: str
) -> None:
    sign_in(client, site.admin_email, site.admin_password)
    reply = client.get(path)
    assert reply.status_code in (200, 400), (path, reply.status_code)
    if not path.startswith("/usage.csv"):
        assert reply.headers["content-type"].startswith("text/html"), path
    api = client.get("/api/agents/v1/responses/resp_x/input_items?limit=abc")
    assert api.status_code in (400, 401) and api.headers["content-type"].startswith(
        "application/json"
    )


def test_a_new_key_is_shown_once_and_a_reload_makes_no_second_key(
    site: Site, client: httpx.Client
) -> None:
    site.add_user("reveal@example.com", "reveal-password-1")
    sign_in(client, "reveal@example.com", "reveal-password-1")
    token = csrf_of(client.get("/settings/keys").text)
    made = client.post("/settings/keys", data={"csrf_token": token, "name": "once", "expires": "7"})
    assert made.status_code == 303 and made.headers["location"].startswith("/settings/keys")
    shown = client.get(made.headers["location"])
    found = REVEALED.search(shown.text)
    assert found is not None
    again = client.get(made.headers["location"]).text  # a reload
    assert found.group(1) not in again and 'id="revealed-key"' not in again
    assert again.count("<tr data-key-id=") == 1  # one key, not two
    # The sealed reveal is bound to its user: another user replaying it sees nothing.
    with site.client() as other:
        site.add_user("reveal2@example.com", "reveal-password-2")
        sign_in(other, "reveal2@example.com", "reveal-password-2")
        other.cookies.set(reveal.COOKIE, made.cookies[reveal.COOKIE], path="/settings/keys")
        assert found.group(1) not in other.get("/settings/keys").text
