"""Accessibility: an axe-core scan (the npm package pinned in tests/node) of every page,
light and dark, finds no serious or critical violation; focus rings and field borders
reach 3:1 against what surrounds them (WCAG 1.4.11, which axe does not check); each chart
has its figures as a table.

Real headless Chromium driven by Playwright, as in test_browser.py. axe is injected into
each page by Playwright (the scan's context bypasses the page's CSP, which allows only the
site's own scripts)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.chromium import CHROMIUM
from tests.web.conftest import Site
from tests.web.test_browser import open_signed_in, shot
from tests.web.test_long_values import PASSWORD, Long, long  # noqa: F401  (the fixture)

NODE = Path(__file__).resolve().parents[1] / "node"
# `npm ci` in tests/node installs it; AXE_CORE_JS may point at another copy of the file.
AXE = Path(os.environ.get("AXE_CORE_JS", NODE / "node_modules" / "axe-core" / "axe.min.js"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
    pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: npm ci in tests/node"),
]
USER_PAGES = [
    "/agents", "/agents/new", "/settings/keys", "/settings/secrets", "/settings/provider-keys",
    "/settings/password", "/settings/sessions", "/usage", "/playground", "/no-such-page",
]  # fmt: skip
ADMIN_PAGES = [
    "/admin/users", "/admin/keys", "/admin/groups", "/admin/permissions", "/admin/usage",
    "/admin/usage?by=agent", "/admin/audit", "/admin/health",
]  # fmt: skip
SCAN = """async () => {
  const found = await axe.run(document, {resultTypes: ['violations']});
  return found.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => [v.id, v.impact, v.nodes.slice(0, 3).map(n => n.target.join(' '))]);
}"""


def scan(page: Page, path: str) -> list[object]:
    page.goto(path)
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(SCAN))


def _scheme(scheme: str) -> dict[str, object]:
    return {"bypass_csp": True, "color_scheme": scheme}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_axe_violations_on_any_page(
    browser: Browser,
    site: Site,
    scheme: str,
    long: Long,  # noqa: F811  (test_long_values' fixture: agents, keys and usage to show)
) -> None:
    found: dict[str, list[object]] = {}
    login = browser.new_context(base_url=site.server.url, **_scheme(scheme)).new_page()  # type: ignore[arg-type]
    found["/login"] = scan(login, "/login")
    page = open_signed_in(browser, site, long.email, PASSWORD, **_scheme(scheme))
    for path in [*USER_PAGES, f"/agents/{long.agent_id}"]:
        found[path] = scan(page, path)
    admin = open_signed_in(browser, site, site.admin_email, site.admin_password, **_scheme(scheme))
    admin.goto("/admin/users")
    user_page = admin.locator(f'tr[data-user="{long.email}"] a', has_text="Manage")
    for path in [*ADMIN_PAGES, str(user_page.get_attribute("href"))]:
        found[path] = scan(admin, path)
    shot(admin, f"axe_admin_user_{scheme}")
    bad = {path: violations for path, violations in found.items() if violations}
    assert not bad, f"serious or critical axe violations ({scheme}): {bad}"
    assert len(found) == len(USER_PAGES) + len(ADMIN_PAGES) + 3


CONTRAST = """([selector, against]) => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
  const el = document.querySelector(selector);
  const style = getComputedStyle(el);
  const around = rgb(getComputedStyle(el.closest(against)).backgroundColor);
  return {
    border: ratio(rgb(style.borderTopColor), around),
    inside: ratio(rgb(style.borderTopColor), rgb(style.backgroundColor)),
    focus: style.outlineStyle === 'none' ? 0 : ratio(rgb(style.outlineColor), around),
  };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_rings_and_field_borders_reach_3_to_1(
    browser: Browser, site: Site, scheme: str
) -> None:
    page = open_signed_in(browser, site, site.admin_email, site.admin_password, color_scheme=scheme)
    page.goto("/settings/keys")
    page.locator("#key-name").focus()
    field = page.evaluate(CONTRAST, ["#key-name", ".card"])
    assert field["border"] >= 3 and field["inside"] >= 3, field
    assert field["focus"] >= 3, field
    page.keyboard.press("Tab")  # to the next control, by keyboard as a user would
    page.locator("button[type=submit]", has_text="Create key").focus()
    button = page.evaluate(CONTRAST, ["form[action='/settings/keys'] button[type=submit]", ".card"])
    assert button["focus"] >= 3, button
    page.goto("/agents")
    page.get_by_role("link", name="Usage", exact=True).first.focus()
    link = page.evaluate(CONTRAST, ["header a[href='/usage'], nav a[href='/usage']", "body"])
    assert link["focus"] >= 3, link
    shot(page, f"focus_ring_{scheme}")


def test_every_chart_has_its_figures_as_a_table(
    browser: Browser,
    site: Site,
    long: Long,  # noqa: F811
) -> None:
    page = open_signed_in(browser, site, long.email, PASSWORD)
    page.goto("/usage")
    charts = page.locator("figure.chart svg")
    assert charts.count() == 2
    for chart_id in ("credits-chart", "tokens-chart"):
        table = page.locator(f"#{chart_id}-table")
        expect(table).to_be_hidden()  # folded away until asked for
        page.get_by_text(re.compile(r"per day as a table")).nth(
            0 if chart_id == "credits-chart" else 1
        ).click()
        expect(table).to_be_visible()
        row = table.locator("tbody tr.total").first
        bars = page.eval_on_selector_all(
            f"figure:has(#{chart_id}-title) rect title", "all => all.map(t => t.textContent)"
        )
        day = row.locator("th").inner_text()
        total = row.locator("td").last.inner_text()
        values = [
            int(text.rsplit(": ", 1)[1].replace(",", "")) for text in bars if text.startswith(day)
        ]
        assert values and f"{sum(values):,}" == total  # the table says what the bars draw
    shot(page, "usage_chart_tables")
