"""Phones: at 390 px the lists (agents, admin users, keys, transactions) are cards, no page
scrolls sideways and every action (button, link, field) lies within the viewport, with the
long values of test_long_values.py (200-character names, a 204-character email).

Real headless Chromium driven by Playwright, as in test_browser.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.web.chromium import CHROMIUM
from tests.web.conftest import Site
from tests.web.test_browser import open_signed_in, shot
from tests.web.test_long_values import PASSWORD, Long, long  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
]
PHONE = {"width": 390, "height": 844}
USER_PAGES = ("/agents", "/settings/keys", "/usage", "/settings/sessions", "/settings/password")
ADMIN_PAGES = ("/admin/users", "/admin/keys", "/agents", "/admin/usage", "/admin/audit")
CARD_LISTS = {"/agents": "table.cards", "/settings/keys": "#keys", "/usage": "#transactions"}

# Every visible control's box, and the page's scroll width against the viewport.
MEASURE = """() => {
  const out = [];
  for (const el of document.querySelectorAll('button, a[href], input, select, textarea, summary')) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || style.visibility === 'hidden') continue;
    // the skip link is placed off-screen until focused
    if (el.closest('dialog:not([open])') || el.classList.contains('skip-link')) continue;
    out.push([el.outerHTML.slice(0, 90), Math.round(box.left), Math.round(box.right)]);
  }
  return {scroll: document.documentElement.scrollWidth, width: innerWidth, controls: out};
}"""


def assert_fits_a_phone(page: Page, path: str) -> None:
    page.goto(path)
    found = page.evaluate(MEASURE)
    width = found["width"]
    assert found["scroll"] <= width, f"{path} scrolls sideways: {found['scroll']} > {width}"
    outside = [c for c in found["controls"] if c[1] < 0 or c[2] > width]
    assert not outside, f"{path}: controls off-screen at {width} px: {outside}"
    assert found["controls"], f"{path} has no controls"


def test_a_users_lists_are_cards_with_every_action_on_screen(
    browser: Browser,
    site: Site,
    long: Long,  # noqa: F811  (test_long_values' fixture)
) -> None:
    page = open_signed_in(browser, site, long.email, PASSWORD, viewport=PHONE, is_mobile=True)
    for path in USER_PAGES:
        assert_fits_a_phone(page, path)
        shot(page, "phone_" + path.strip("/").replace("/", "_"))
    for path, table in CARD_LISTS.items():
        page.goto(path)
        assert page.locator(f"{table} thead").first.bounding_box()["height"] <= 1  # type: ignore[index]
        row = page.locator(f"{table} tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") == "block", path
    page.goto("/settings/keys")
    revoke = page.get_by_role("button", name="Revoke").first
    box = revoke.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]


def test_admin_lists_fit_a_phone(
    browser: Browser,
    site: Site,
    long: Long,  # noqa: F811  (test_long_values' fixture)
) -> None:
    page = open_signed_in(
        browser, site, site.admin_email, site.admin_password, viewport=PHONE, is_mobile=True
    )
    for path in ADMIN_PAGES:
        assert_fits_a_phone(page, path)
        shot(page, "phone_" + path.strip("/").replace("/", "_"))
    page.goto("/admin/users")
    row = page.locator(f'tr[data-user="{long.email}"]')
    for name in ("Save", "Disable", "Grant", "Manage"):
        box = row.get_by_role(row_role(name), name=name).first.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
    row.get_by_role("link", name="Manage").click()
    assert_fits_a_phone(page, page.url)
    shot(page, "phone_admin_user")


def row_role(name: str) -> str:
    return "link" if name == "Manage" else "button"
