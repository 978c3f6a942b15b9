"""Sign-in through OpenID Connect against a real provider (the certified `oidc-provider`
package, tests/node/oidc_idp.mjs), driven in Chromium, plus its client-credentials
tokens on the API. Two agenthosts share the provider: one with passwords and
`auto_provision`, one with passwords off and no provisioning."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Page, Route

from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, free_port, running_server
from tests.web.chromium import CHROMIUM
from tests.web.test_browser import shot

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
IDP_USERS = {
    "ann": {"email": "ann@example.com", "email_verified": True, "roles": ["agenthost-admin"]},
    "ben": {"email": "ben@example.com", "email_verified": True, "groups": ["engineering"]},
    "newbie": {"email": "newbie@example.com", "email_verified": True},
    "unverified": {"email": "ben@example.com", "email_verified": False},
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
    pytest.mark.skipif(
        shutil.which("node") is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir(),
        reason="needs node and `npm ci` in tests/node",
    ),
]


@dataclass
class Sites:
    issuer: str
    open: Server  # passwords on, auto_provision
    closed: Server  # passwords off, no provisioning
    users_file: Path

    def set_claims(self, login: str, **claims: Any) -> None:
        users = json.loads(self.users_file.read_text())
        users[login] = {**users[login], **claims}
        self.users_file.write_text(json.dumps(users))


def oidc(issuer: str, **extra: Any) -> dict[str, Any]:
    settings = {
        "issuer": issuer,
        "client_id": "agenthost",
        "client_secret": "agenthost-secret",
        "display_name": "Acme SSO",
        "scopes": ["openid", "email", "profile", "roles", "groups"],
        "admin_claim": {"name": "roles", "values": ["agenthost-admin"]},
        "groups_claim": "groups",
        "api": {"enabled": True, "audience": "agenthost-api", "required_scopes": ["agents.invoke"]},
    }
    return {"auth": {"oidc": settings | extra}}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    idp_port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    folder = tmp_path_factory.mktemp("oidc-web")
    open_config = oidc(issuer, auto_provision=True)
    closed_config = oidc(issuer) | {"auth": {"password_login": False, **oidc(issuer)["auth"]}}
    with (
        running_server(folder / "open", None, open_config, start=False) as open_site,
        running_server(folder / "closed", None, closed_config, start=False) as closed_site,
    ):
        callbacks = ",".join(f"{s.url}/auth/oidc/callback" for s in (open_site, closed_site))
        users_file = folder / "idp-users.json"
        users_file.write_text(json.dumps(IDP_USERS))
        env = {"PORT": str(idp_port), "REDIRECT_URI": callbacks, "USERS_FILE": str(users_file)}
        node = shutil.which("node") or "node"
        proc, _ = start_process([str(NODE_DIR / "oidc_idp.mjs")], program=node, env=env)
        try:
            for site in (open_site, closed_site):
                site.start()
                site.cli("users", "add", "ben@example.com")
            open_site.cli("users", "add", "ann@example.com")
            yield Sites(issuer, open_site, closed_site, users_file)
        finally:
            stop_process(proc)


def idp_sign_in(page: Page, login: str) -> None:
    """The provider's own pages: any password, then consent."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any-password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def sso(browser: Browser, server: Server, login: str, start: str = "/login") -> Page:
    page = browser.new_context(base_url=server.url).new_page()
    page.goto(start)
    page.get_by_role("link", name="Sign in with Acme SSO").click()
    idp_sign_in(page, login)
    page.wait_for_load_state()
    return page


def test_a_user_signs_in_with_the_provider_and_lands_where_they_were_going(
    sites: Sites, browser: Browser
) -> None:
    page = sso(browser, sites.open, "ben", start="/login?next=/usage")
    assert urlsplit(page.url).path == "/usage"
    assert "ben@example.com" in page.content()
    shot(page, "oidc-signed-in")
    # Matched by verified email the first time: the subject is now stored.
    listed = sites.open.cli("users", "list").stdout
    assert "ben@example.com" in listed
    page.context.close()


def test_admin_claim_decides_the_role_and_auto_provision_creates_users(
    sites: Sites, browser: Browser
) -> None:
    page = sso(browser, sites.open, "ann")
    assert page.goto(f"{sites.open.url}/admin/users").status == 200  # the claim made her admin
    page.context.close()
    page = sso(browser, sites.open, "newbie")
    assert urlsplit(page.url).path == "/agents"
    assert "newbie@example.com\tuser" in sites.open.cli("users", "list").stdout
    page.context.close()


def test_sign_in_syncs_groups_and_the_admin_role_each_time(sites: Sites, browser: Browser) -> None:
    server = sites.open
    sso(browser, server, "ben").context.close()  # ben's provider groups: engineering
    assert "engineering" in server.cli("groups", "list").stdout  # made by the sign-in
    server.cli("users", "add", "lead@example.com")
    shared = server.create_agent(
        "lead@example.com", "scripted", "m", "--share-remote", "group:engineering"
    )
    ben_key = server.create_key("ben@example.com")

    def ben_sees() -> bool:
        with openai.OpenAI(base_url=server.api, api_key=ben_key, max_retries=0) as client:
            return shared in [m.id for m in client.models.list()]

    assert ben_sees()
    sites.set_claims("ben", groups=[], roles=["agenthost-admin"])
    page = sso(browser, server, "ben")  # the next sign-in takes both away and adds admin
    assert page.goto(f"{server.url}/admin/users").status == 200
    page.context.close()
    assert not ben_sees()
    sites.set_claims("ben", groups=["engineering"], roles=[])
    page = sso(browser, server, "ben")
    assert page.goto(f"{server.url}/admin/users").status == 403
    page.context.close()
    assert ben_sees()


def test_an_unverified_email_never_matches_an_account(sites: Sites, browser: Browser) -> None:
    page = sso(browser, sites.open, "unverified")
    assert urlsplit(page.url).path == "/auth/oidc/callback"
    assert "no agenthost account" in page.content()
    page.context.close()


def test_without_provisioning_unknown_people_are_refused_and_passwords_are_off(
    sites: Sites, browser: Browser
) -> None:
    page = sso(browser, sites.closed, "newbie")
    assert "no agenthost account" in page.content()
    assert page.locator("input[name=password]").count() == 0  # password sign-in is hidden
    shot(page, "oidc-refused")
    page.context.close()
    page = sso(browser, sites.closed, "ben")
    assert urlsplit(page.url).path == "/agents"
    page.context.close()


def test_a_password_post_is_refused_when_passwords_are_off(sites: Sites) -> None:
    sites.closed.cli("users", "set-password", "ben@example.com", input="ben-password-1\n")
    with httpx.Client(base_url=sites.closed.url) as client:
        login = client.get("/login")
        assert "Sign in with Acme SSO" in login.text and 'name="password"' not in login.text
        token = META_CSRF.search(login.text)
        assert token is not None
        form = {"email": "ben@example.com", "password": "ben-password-1"}
        refused = client.post("/login", data=form | {"csrf_token": token.group(1)})
        assert refused.status_code == 403 and "turned off" in refused.text
        assert client.get("/agents", follow_redirects=False).status_code != 200


def capture_callback(browser: Browser, server: Server, login: str) -> tuple[Page, str]:
    """Run a sign-in up to the provider's redirect back to agenthost, and hold that
    redirect: the consent form's answer is fetched by hand, its redirects followed on the
    provider only, and the page shown a placeholder instead (Playwright does not route
    requests that follow a redirect)."""
    page = browser.new_context(base_url=server.url).new_page()
    held: list[str] = []

    def hold(route: Route) -> None:
        request = route.request
        if request.method != "POST" or "prompt=consent" not in (request.post_data or ""):
            route.continue_()
            return
        location = urljoin(request.url, route.fetch(max_redirects=0).headers["location"])
        while not location.startswith(server.url):
            answer = page.context.request.get(location, max_redirects=0)
            location = urljoin(location, answer.headers["location"])
        held.append(location)
        route.fulfill(status=200, body="held", content_type="text/plain")

    page.route("**/interaction/**", hold)
    page.goto("/login")
    page.get_by_role("link", name="Sign in with Acme SSO").click()
    idp_sign_in(page, login)
    page.wait_for_load_state()
    assert held, "the provider never redirected back"
    page.unroute("**/interaction/**")
    return page, held[0]


def test_a_callback_replayed_or_carried_to_another_browser_is_refused(
    sites: Sites, browser: Browser
) -> None:
    page, callback = capture_callback(browser, sites.open, "ben")
    # Another browser (no flow cookie): refused, and its PKCE verifier is missing too.
    other = browser.new_context().new_page()
    other.goto(callback)
    assert "not started in this browser" in other.content()
    other.context.close()
    # The right browser completes it once...
    page.goto(callback)
    assert urlsplit(page.url).path == "/agents"
    # ...and a replay in that same browser is refused (the flow cookie is gone).
    page.goto(callback)
    assert "not started in this browser" in page.content()
    page.context.close()


def test_a_swapped_code_or_state_is_refused(sites: Sites, browser: Browser) -> None:
    def query(url: str) -> dict[str, str]:
        return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}

    ann, ann_callback = capture_callback(browser, sites.open, "ann")
    stolen = query(ann_callback)
    callback = f"{sites.open.url}/auth/oidc/callback"
    # ann's code with ben's own state, in ben's browser: the PKCE verifier does not fit.
    ben, ben_callback = capture_callback(browser, sites.open, "ben")
    ben.goto(f"{callback}?code={stolen['code']}&state={query(ben_callback)['state']}")
    assert "refused the sign-in" in ben.content()
    ben.context.close()
    # ann's state in another sign-in of ben's: that answer belongs to another attempt.
    ben, _ = capture_callback(browser, sites.open, "ben")
    ben.goto(f"{callback}?code={stolen['code']}&state={stolen['state']}")
    assert "belongs to another attempt" in ben.content()
    assert urlsplit(ben.url).path == "/auth/oidc/callback"  # not signed in
    ben.context.close()
    ann.context.close()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_the_return_address_never_leaves_the_site(
    sites: Sites, browser: Browser, target: str
) -> None:
    page = sso(browser, sites.open, "ben", start=f"/login?next={target}")
    assert urlsplit(page.url).netloc == urlsplit(sites.open.url).netloc
    assert urlsplit(page.url).path == "/agents"
    page.context.close()


def test_client_credentials_tokens_from_the_provider_call_the_api(sites: Sites) -> None:
    server = sites.open
    server.cli("users", "add", "robot-owner@example.com")
    agent = server.create_agent("robot-owner@example.com", "scripted", "m")
    server.cli("users", "set-oidc-subject", "robot-owner@example.com", "robot")
    reply = httpx.post(
        f"{sites.issuer}/token",
        auth=("robot", "robot-secret"),
        data={"grant_type": "client_credentials", "scope": "agents.invoke"},
        timeout=10,
    )
    token = reply.json()["access_token"]
    with openai.OpenAI(base_url=server.api, api_key=token, max_retries=0) as client:
        answer = client.chat.completions.create(
            model=agent, messages=[{"role": "user", "content": "hi from a robot"}]
        )
    assert answer.choices[0].message.content == "echo: hi from a robot"
    # A tampered copy of the provider's token is refused.
    with pytest.raises(openai.AuthenticationError):
        with openai.OpenAI(base_url=server.api, api_key=token + "x", max_retries=0) as client:
            client.models.list()
