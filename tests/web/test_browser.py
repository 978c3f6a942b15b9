"""End-to-end tests in real headless Chromium (Debian's package) driven by Playwright.

Screenshots of every page land in tests/artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.chromium import CHROMIUM, SHOTS
from tests.web.conftest import Site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
]

USER = ("journey@example.com", "journey-password-1")


@pytest.fixture(scope="module")
def journey_user(site: Site) -> tuple[str, str]:
    site.add_user(*USER)
    return USER


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_signed_in(browser: Browser, site: Site, email: str, password: str, **kw: object) -> Page:
    return signed_in_page(browser, site.server.url, email, password, **kw)


def signed_in_page(
    browser: Browser, base_url: str, email: str, password: str, **kw: object
) -> Page:
    """A page of a new browser context, signed in on the server at `base_url`."""
    page = browser.new_context(base_url=base_url, **kw).new_page()  # type: ignore[arg-type]
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Agents", level=1)).to_be_visible()
    return page


def create_agent(page: Page, name: str) -> str:
    page.goto("/agents/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Provider").select_option("scripted")
    page.get_by_label("Model", exact=True).fill("scripted-model")
    page.get_by_label("Instructions").fill("Answer briefly.")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    return page.locator("#agent-id").input_value()


def test_sign_in_agent_key_api_usage_and_revoke(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    login = browser.new_context(base_url=site.server.url).new_page()
    login.goto("/login")
    shot(login, "login")
    page = open_signed_in(browser, site, *journey_user)

    agent_id = create_agent(page, "Journey agent")
    assert agent_id.startswith("agent_") and len(agent_id) == 27
    shot(page, "agent_detail")
    page.goto("/agents/new")
    shot(page, "agent_new")
    page.goto("/agents")
    expect(page.get_by_role("link", name="Journey agent")).to_be_visible()
    shot(page, "agents")

    page.goto("/settings/keys")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Expires").select_option("30")
    page.get_by_role("button", name="Create key").click()
    dialog = page.locator("#reveal-dialog")
    expect(dialog).to_be_visible()
    key = dialog.locator("#revealed-key").input_value()
    assert key.startswith("sk-") and len(key) == 67
    shot(page, "keys_reveal")
    expect(page.locator("#snippet-1")).to_contain_text(agent_id)

    client = openai.OpenAI(base_url=site.server.api, api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model=agent_id, messages=[{"role": "user", "content": "hello from chromium"}]
    )
    assert reply.choices[0].message.content == "echo: hello from chromium"

    page.goto("/usage")
    row = page.locator("#transactions tbody tr").first
    expect(row).to_contain_text("Journey agent")
    expect(row).to_contain_text("laptop")
    assert page.locator("#credits-chart-title").is_visible()
    shot(page, "usage")

    page.goto("/settings/keys")
    key_row = page.locator("tr", has_text="laptop")
    key_row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("tr", has_text="laptop")).to_contain_text("revoked")
    shot(page, "keys_revoked")
    with pytest.raises(openai.AuthenticationError) as denied:
        client.chat.completions.create(model=agent_id, messages=[{"role": "user", "content": "x"}])
    assert denied.value.status_code == 401


def test_non_admin_cannot_open_admin_pages(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(browser, site, *journey_user)
    assert page.get_by_role("navigation", name="Main").get_by_text("Admin").count() == 0
    for path in ("/admin/users", "/admin/groups", "/admin/permissions", "/admin/health"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    shot(page, "forbidden")


def test_posts_without_csrf_are_refused(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(browser, site, *journey_user)
    # The browser sends the session cookie; without the form token the post must fail.
    refused = page.request.post("/settings/keys", form={"name": "forged", "expires": "7"})
    assert refused.status == 403
    page.goto("/settings/keys")
    assert page.locator("tr", has_text="forged").count() == 0


def test_admin_pages_and_playground(browser: Browser, site: Site) -> None:
    page = open_signed_in(browser, site, site.admin_email, site.admin_password)
    for path, name in (
        ("/admin/users", "admin_users"),
        ("/admin/groups", "admin_groups_page"),
        ("/admin/permissions", "admin_permissions"),
        ("/admin/health", "admin_health"),
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        shot(page, name)
    expect(page.locator("table", has_text="Providers")).to_contain_text("scripted")

    agent_id = create_agent(page, "Playground agent")
    page.goto(f"/playground?agent={agent_id}")
    page.get_by_label("Message").fill("hi playground")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg.assistant .body")).to_have_text("echo: hi playground")
    shot(page, "playground")


def test_admin_makes_a_group_and_shares_an_agent_with_it(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(browser, site, site.admin_email, site.admin_password)
    page.goto("/admin/users")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Groups").click()
    expect(page.get_by_role("heading", name="Add a group")).to_be_visible()
    page.get_by_label("Name").fill("Browser team")
    page.get_by_role("button", name="Add group").click()
    group = page.locator('section[data-group="Browser team"]')
    group.get_by_label("Add a member to Browser team").fill(journey_user[0])
    group.get_by_role("button", name="Add member").click()
    expect(page.locator('section[data-group="Browser team"]')).to_contain_text(journey_user[0])
    shot(page, "admin_groups")

    agent_id = create_agent(page, "Team agent")
    page.get_by_label("Share with a group").select_option(label="Browser team")
    page.get_by_role("button", name="Share with group").click()
    expect(page.locator(".grants")).to_contain_text("Group Browser team")
    shot(page, "agent_shared_with_group")
    member = open_signed_in(browser, site, *journey_user)
    member.goto("/agents")
    expect(member.get_by_role("link", name="Team agent")).to_be_visible()

    page.goto("/admin/groups")
    group = page.locator('section[data-group="Browser team"]')
    group.get_by_role("button", name="Delete group").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(page.locator('section[data-group="Browser team"]')).to_have_count(0)
    member.goto("/agents")
    expect(member.get_by_role("link", name="Team agent")).to_have_count(0)
    gone = member.goto(f"/agents/{agent_id}")
    assert gone is not None and gone.status == 404


def test_settings_area_holds_keys_and_secrets(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(browser, site, *journey_user)
    page.goto("/agents")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    settings = page.get_by_role("navigation", name="Settings")
    expect(settings.get_by_role("link", name="API keys")).to_have_attribute("aria-current", "page")
    settings.get_by_role("link", name="Secrets for tools").click()
    expect(page.get_by_role("heading", name="Secrets for tools", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/settings/secrets$"))
    page.get_by_label("Secret", exact=True).fill("search_token")
    page.get_by_label("Value", exact=True).fill("never-shown-again")
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator('tr[data-secret-name="search_token"]')).to_be_visible()
    assert "never-shown-again" not in page.content()
    shot(page, "settings_secrets")


def test_no_page_breaks_the_content_security_policy(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(browser, site, *journey_user)
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    for path in ("/agents", "/agents/new", "/usage", "/playground", "/settings/keys",
                 "/settings/secrets", "/settings/sessions"):  # fmt: skip
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert violations == []


def test_mobile_layout_has_no_horizontal_scroll(
    browser: Browser, site: Site, journey_user: tuple[str, str]
) -> None:
    page = open_signed_in(
        browser, site, *journey_user, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    for path in ("/agents", "/usage", "/playground", "/settings/keys", "/settings/secrets"):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide"
    shot(page, "mobile_keys_390")
