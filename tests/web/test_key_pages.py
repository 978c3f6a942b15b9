"""Keys show their use (last use, requests, credits spent = the ledger, budget); admins see
every user's keys and revoke any of them (audit-logged); users reach only their own.

Real headless Chromium driven by Playwright, as in test_browser.py; the calls go through
the `openai` SDK to an agent on the fake OpenAI-compatible upstream."""

from __future__ import annotations

import secrets
import sqlite3
import time

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.chromium import CHROMIUM
from tests.web.conftest import Site, csrf_of, sign_in
from tests.web.test_browser import open_signed_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
]
PASSWORD = "key-pages-password-1"


def _ledger(site: Site, key_id: str) -> tuple[int, int]:
    """(usage rows, credits spent) of a key, read from the ledger itself."""
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        count, credits = db.execute(
            "SELECT COUNT(*), COALESCE(-SUM(credits), 0) FROM transactions "
            "WHERE api_key_id = ? AND kind = 'usage'",
            (key_id,),
        ).fetchone()
    return int(count), int(credits)


def _key_id(site: Site, email: str) -> str:
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        (key_id,) = db.execute(
            "SELECT k.id FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.email = ?",
            (email,),
        ).fetchone()
    return str(key_id)


def _cell(page: Page, key_id: str, label: str) -> str:
    return page.locator(f'tr[data-key-id="{key_id}"] td[data-label="{label}"]').inner_text()


def test_keys_show_their_use_and_admins_revoke_any_key(browser: Browser, site: Site) -> None:
    email = f"keyuse-{secrets.token_hex(3)}@example.com"
    site.add_user(email, PASSWORD)
    agent = site.server.cli(
        "agents", "create", "--owner", email, "--name", "Key use agent",
        "--provider", "fake", "--model", "gpt-4o-mini",
    ).stdout.strip()  # fmt: skip
    key = site.create_key(email, PASSWORD)
    key_id = _key_id(site, email)
    client = openai.OpenAI(base_url=site.server.api, api_key=key, max_retries=0)
    for text in ("!tokens 30\nfirst", "!tokens 50\nsecond"):
        client.chat.completions.create(model=agent, messages=[{"role": "user", "content": text}])
    requests, credits = _ledger(site, key_id)
    assert requests == 2 and credits > 0

    page = open_signed_in(browser, site, email, PASSWORD)
    deadline = time.monotonic() + 20  # last use is written in batches every few seconds
    while True:
        page.goto("/settings/keys")
        if _cell(page, key_id, "Last used") != "never" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert _cell(page, key_id, "Last used").endswith("UTC")
    assert _cell(page, key_id, "Requests") == "2"
    assert _cell(page, key_id, "Credits spent") == f"{credits:,}"  # the ledger's sum
    assert _cell(page, key_id, "Budget") == "none"
    shot(page, "keys_use")

    admin = open_signed_in(browser, site, site.admin_email, site.admin_password)
    admin.goto("/admin/keys")
    row = admin.locator(f'tr[data-key-id="{key_id}"]')
    expect(row).to_contain_text(email)
    assert _cell(admin, key_id, "Credits spent") == f"{credits:,}"
    shot(admin, "admin_keys")
    admin.goto(f"/admin/keys?owner={email}")
    assert admin.locator("#admin-keys tbody tr").count() == 1
    row.get_by_role("button", name="Revoke").click()
    admin.locator("#confirm-ok").click()
    expect(admin.get_by_role("status")).to_contain_text("revoked")
    expect(admin.locator(f'tr[data-key-id="{key_id}"]')).to_contain_text("revoked")
    shot(admin, "admin_keys_revoked")

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "x"}])
    admin.goto(f"/admin/audit?target={key_id}&kind=api_key.revoked")
    expect(admin.locator("table tbody tr").first).to_contain_text(site.admin_email)


def test_users_reach_only_their_own_keys(site: Site) -> None:
    owner, other = (f"{n}-{secrets.token_hex(3)}@example.com" for n in ("own", "eve"))
    site.add_user(owner, PASSWORD)
    site.add_user(other, PASSWORD)
    key = site.create_key(owner, PASSWORD)
    key_id = _key_id(site, owner)
    with httpx.Client(base_url=site.server.url, timeout=30) as eve:
        sign_in(eve, other, PASSWORD)
        token = csrf_of(eve.get("/settings/keys").text)
        assert key_id not in eve.get("/settings/keys").text
        assert eve.get("/admin/keys").status_code == 403
        assert (
            eve.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": token}).status_code == 403
        )
        mine_only = eve.post(f"/settings/keys/{key_id}/revoke", data={"csrf_token": token})
        assert mine_only.status_code == 404
    with httpx.Client(base_url=site.server.url, timeout=30) as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        token = csrf_of(admin.get("/admin/keys").text)
        missing = admin.post("/admin/keys/key_nosuchkey/revoke", data={"csrf_token": token})
        assert missing.status_code == 404
        no_csrf = admin.post(f"/admin/keys/{key_id}/revoke", data={})
        assert no_csrf.status_code == 403
    models = httpx.get(
        f"{site.server.api}/models", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert models.status_code == 200  # nothing above touched the key
