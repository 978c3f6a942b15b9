"""Long values never break a table: at 1280 px, a 200-character agent name, model and key
name, a 204-character email, a 2,000-character description and a 500-character note
leave every list page without horizontal scroll (the page and each table), and the
whole value stays reachable: in a `title` (hover) and on the agent's own page.

Real headless Chromium (Debian's package) driven by Playwright, as in test_browser.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import openai
import pytest
from playwright.sync_api import Browser, Page

from tests.web.chromium import CHROMIUM
from tests.web.conftest import Site, csrf_of, sign_in
from tests.web.test_browser import open_signed_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
]

WIDE = {"width": 1280, "height": 900}
PASSWORD = "long-values-password-1"
# No spaces anywhere: nothing for the browser to break a line at.
LONG_UA = "Mozilla/5.0 (X11; Linux x86_64) " + "Chromium" * 40


@dataclass
class Long:
    email: str
    agent_name: str
    agent_id: str
    key_name: str
    model: str
    note: str


@pytest.fixture(scope="module")
def long(site: Site) -> Long:
    tag = secrets.token_hex(3)
    email = f"{'l' * 58}{tag}@{'d' * 63}.{'e' * 63}.example.com"  # 204 characters
    site.add_user(email, PASSWORD)
    values = Long(
        email=email,
        agent_name="A" * 194 + tag,
        agent_id="",
        key_name="K" * 194 + tag,
        model="M" * 200,
        note="N" * 500,
    )
    server = site.server
    values.agent_id = server.cli(
        "agents", "create", "--owner", email, "--name", values.agent_name,
        "--provider", "scripted", "--model", values.model,
    ).stdout.strip()  # fmt: skip
    with site.client() as client:
        sign_in(client, email, PASSWORD)
        token = csrf_of(client.get(f"/agents/{values.agent_id}").text)
        edit = {"name": values.agent_name, "provider": "scripted", "model": values.model}
        saved = client.post(
            f"/agents/{values.agent_id}",
            data={"csrf_token": token, **edit, "description": "D" * 2_000},
        )
        assert saved.status_code == 303, saved.text[:300]
        made = client.post(
            "/settings/keys",
            data={"csrf_token": token, "name": values.key_name, "expires": "7"},
            follow_redirects=True,
        )
        key = made.text.split('id="revealed-key"')[1].split('value="')[1].split('"')[0]
        secret = {"csrf_token": token, "name": "S" * 64, "value": "v"}
        assert client.post("/settings/secrets", data=secret).status_code == 303
    with openai.OpenAI(base_url=server.api, api_key=key, max_retries=0) as client_api:
        client_api.chat.completions.create(
            model=values.agent_id, messages=[{"role": "user", "content": "W" * 300}]
        )
    with site.client() as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        page = admin.get("/admin/users").text
        user_id = page.split(f'data-user="{email}"')[1].split("/admin/users/")[1].split("/")[0]
        grant = {"csrf_token": csrf_of(page), "credits": "7", "note": values.note}
        assert admin.post(f"/admin/users/{user_id}/credits", data=grant).status_code == 303
    return values


def assert_no_horizontal_scroll(page: Page, path: str) -> None:
    page.goto(path)
    widths = page.evaluate(
        """() => ({
            page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
            tables: [...document.querySelectorAll('table')].map(t => {
                const wrap = t.parentElement;
                return [t.id || t.querySelector('caption, th')?.textContent || '?',
                        t.scrollWidth, wrap.scrollWidth, wrap.clientWidth];
            }),
        })"""
    )
    scroll, client = widths["page"]
    assert scroll <= client, f"{path}: the page scrolls sideways ({scroll} > {client})"
    assert widths["tables"], f"{path} has no table"
    for name, table, wrap_scroll, wrap_client in widths["tables"]:
        assert table <= wrap_client and wrap_scroll <= wrap_client, (
            f"{path}: table {name!r} is {table}px in a {wrap_client}px container"
        )


def titles(page: Page, selector: str) -> set[str]:
    return set(page.eval_on_selector_all(selector, "all => all.map(e => e.title)"))


def test_a_users_list_pages_stay_within_1280_px(browser: Browser, site: Site, long: Long) -> None:
    page = open_signed_in(browser, site, long.email, PASSWORD, viewport=WIDE, user_agent=LONG_UA)
    for path in ("/agents", "/settings/keys", "/usage", "/settings/secrets", "/settings/sessions"):
        assert_no_horizontal_scroll(page, path)
        shot(page, "long_" + path.strip("/").replace("/", "_"))

    page.goto("/agents")
    assert long.agent_name in titles(page, "table a")
    assert "D" * 2_000 in titles(page, "table [title]")
    page.goto("/settings/keys")
    assert long.key_name in titles(page, "table [title]")
    page.goto("/usage")
    usage = titles(page, "#transactions [title]")
    assert {long.agent_name, long.model, long.note} <= usage
    assert any(title.startswith(f"{long.key_name} (sk-") for title in usage)  # name (prefix…)

    page.goto(f"/agents/{long.agent_id}")  # the whole name on the agent's own page
    assert page.locator("h1").inner_text() == long.agent_name
    shot(page, "long_agent_detail")
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the agent page scrolls sideways: {width}"


def test_admin_list_pages_stay_within_1280_px(browser: Browser, site: Site, long: Long) -> None:
    page = open_signed_in(browser, site, site.admin_email, site.admin_password, viewport=WIDE)
    paths = ["/admin/users", "/admin/keys", "/agents", "/admin/audit"]
    paths += [f"/admin/usage?by={by}" for by in ("user", "agent", "key", "model")]
    for path in paths:
        assert_no_horizontal_scroll(page, path)
    shot(page, "long_admin_usage_model")

    page.goto("/admin/users")
    assert long.email in titles(page, "table [title]")
    shot(page, "long_admin_users")
    page.goto("/agents")
    assert {long.agent_name, long.email} <= titles(page, "table [title]")
    page.goto("/admin/usage?by=user")
    assert long.email in titles(page, "#usage-report [title]")
    page.goto(f"/admin/audit?target={long.agent_id}")
    assert long.email in titles(page, "table [title]")
