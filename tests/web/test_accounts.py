"""Accounts: changing your own password (ends your other sessions), an admin resetting a
password (a temporary one, shown once) and deleting a user (keys revoked, stored
responses deleted, ledger kept, agents reassigned or deleted), in the browser and the
CLI; all audit-logged.

Real headless Chromium driven by Playwright, as in test_browser.py."""

from __future__ import annotations

import secrets
import sqlite3

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
PASSWORD = "accounts-password-1"


def _new_user(site: Site, tag: str) -> str:
    email = f"{tag}-{secrets.token_hex(3)}@example.com"
    site.add_user(email, PASSWORD)
    return email


def _signed_in(client: httpx.Client) -> bool:
    return client.get("/agents").status_code == 200


def _query(site: Site, sql: str, *args: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        return list(db.execute(sql, args).fetchall())


def _user_id(site: Site, email: str) -> str:
    return str(_query(site, "SELECT id FROM users WHERE email = ?", email)[0][0])


def _audit(site: Site, action: str, target_id: str) -> list[str]:
    rows = _query(
        site, "SELECT actor FROM audit_events WHERE action = ? AND target_id = ?", action, target_id
    )
    return [str(row[0]) for row in rows]


def _confirm(page: Page) -> None:
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-ok").click()


def test_changing_your_password_ends_your_other_sessions(browser: Browser, site: Site) -> None:
    email = _new_user(site, "change")
    page = open_signed_in(browser, site, email, PASSWORD)
    with site.client() as phone:
        sign_in(phone, email, PASSWORD)
        assert _signed_in(phone)
        page.goto("/settings/password")
        shot(page, "settings_password")
        page.get_by_label("Current password").fill("not-my-password")
        page.get_by_label("New password", exact=True).fill("accounts-password-2")
        page.get_by_label("New password again").fill("accounts-password-2")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#current-password-error")).to_contain_text("Wrong current password")
        assert _signed_in(phone)  # a wrong attempt changes nothing

        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill("accounts-password-2")
        page.get_by_label("New password again").fill("accounts-password-3")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#confirm-password-error")).to_contain_text("differ")

        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill("accounts-password-2")
        page.get_by_label("New password again").fill("accounts-password-2")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_contain_text("Password changed")
        shot(page, "settings_password_changed")
        assert not _signed_in(phone)
    page.goto("/agents")
    expect(page.get_by_role("heading", name="Agents", level=1)).to_be_visible()  # still in
    with site.client() as again:
        assert sign_in(again, email, PASSWORD).status_code == 400
        assert sign_in(again, email, "accounts-password-2").status_code == 303
    assert _audit(site, "user.password_changed", _user_id(site, email)) == [email]


def test_an_admin_resets_a_password_shown_once(browser: Browser, site: Site) -> None:
    email = _new_user(site, "reset")
    user_id = _user_id(site, email)
    with site.client() as victim:
        sign_in(victim, email, PASSWORD)
        admin = open_signed_in(browser, site, site.admin_email, site.admin_password)
        admin.goto("/admin/users")
        admin.locator(f'tr[data-user="{email}"]').get_by_role("link", name="Manage").click()
        expect(admin.locator("#account-title")).to_have_text(email)
        admin.get_by_role("button", name="Reset password").click()
        _confirm(admin)
        expect(admin.get_by_role("status")).to_contain_text("Password reset")
        temporary = admin.locator("#temporary-password").input_value()
        assert len(temporary) == 16
        shot(admin, "admin_user_password_reset")
        admin.reload()
        assert admin.locator("#temporary-password").count() == 0  # shown once
        assert not _signed_in(victim)
    with site.client() as back:
        assert sign_in(back, email, PASSWORD).status_code == 400
        assert sign_in(back, email, temporary).status_code == 303
    assert _audit(site, "user.password_reset", user_id) == [site.admin_email]


def test_deleting_a_user_revokes_keys_keeps_the_ledger_and_reassigns_agents(
    browser: Browser, site: Site
) -> None:
    leaving, heir = _new_user(site, "leaving"), _new_user(site, "heir")
    leaving_id = _user_id(site, leaving)
    agent = site.server.cli(
        "agents", "create", "--owner", leaving, "--name", "Inherited agent",
        "--provider", "fake", "--model", "gpt-4o-mini",
    ).stdout.strip()  # fmt: skip
    key = site.create_key(leaving, PASSWORD)
    client = openai.OpenAI(base_url=site.server.api, api_key=key, max_retries=0)
    client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "hi"}])
    # A background stream: the response and its kept events.
    stream = client.responses.create(model=agent, input="remember me", stream=True, background=True)
    stored_id = [e.response.id for e in stream if e.type == "response.completed"][0]
    responses_sql = "SELECT COUNT(*) FROM responses WHERE user_id = ?"
    assert _query(site, responses_sql, leaving_id) == [(1,)]
    events = "SELECT COUNT(*) FROM response_events WHERE response_id = ?"
    assert _query(site, events, stored_id)[0][0] > 0
    ledger_sql = "SELECT COUNT(*), SUM(credits) FROM transactions WHERE user_id = ?"
    ledger = _query(site, ledger_sql, leaving_id)
    assert ledger[0][0] >= 1  # the call's usage row

    admin = open_signed_in(browser, site, site.admin_email, site.admin_password)
    admin.goto(f"/admin/users/{leaving_id}")
    expect(admin.locator("#agents-owned")).to_have_text("1")
    admin.get_by_label("Give them to").check()
    admin.get_by_label("User who takes the agents").select_option(label=heir)
    shot(admin, "admin_user_delete")
    admin.get_by_role("button", name="Delete user").click()
    _confirm(admin)
    expect(admin.get_by_role("status")).to_contain_text("deleted")
    assert admin.locator(f'tr[data-user="{leaving}"]').count() == 0
    shot(admin, "admin_users_after_delete")

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "x"}])
    assert _query(site, ledger_sql, leaving_id) == ledger  # kept for accounting
    assert _query(site, responses_sql, leaving_id) == [(0,)]  # their conversations go
    assert _query(site, events, stored_id) == [(0,)]
    owner = _query(site, "SELECT owner_id FROM agents WHERE id = ?", agent)
    assert owner == [(_user_id(site, heir),)]
    assert _audit(site, "user.deleted", leaving_id) == [site.admin_email]
    assert _audit(
        site,
        "api_key.revoked",
        _query(site, "SELECT id FROM api_keys WHERE user_id = ?", leaving_id)[0][0],
    )  # type: ignore[arg-type]
    with site.client() as gone:
        assert sign_in(gone, leaving, PASSWORD).status_code == 400
    site.add_user(leaving, PASSWORD)  # the address is free for a new account
    assert admin.goto(f"/admin/users/{leaving_id}").status == 404  # type: ignore[union-attr]


def test_deleting_is_admin_only_and_checked(site: Site) -> None:
    doomed = _new_user(site, "doomed")
    doomed_id = _user_id(site, doomed)
    site.server.cli(
        "agents", "create", "--owner", doomed, "--name", "Doomed agent",
        "--provider", "scripted", "--model", "m",
    )  # fmt: skip
    with site.client() as eve:
        sign_in(eve, _new_user(site, "eve"), PASSWORD)
        token = csrf_of(eve.get("/settings/keys").text)
        for path in ("delete", "password"):
            form = {"csrf_token": token, "agents": "delete"}
            assert eve.post(f"/admin/users/{doomed_id}/{path}", data=form).status_code == 403
        assert eve.get(f"/admin/users/{doomed_id}").status_code == 403
    with site.client() as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        page = admin.get(f"/admin/users/{doomed_id}").text
        token = csrf_of(page)
        path = f"/admin/users/{doomed_id}/delete"
        assert admin.post(path, data={"agents": "delete"}).status_code == 403  # no CSRF
        assert admin.post(path, data={"csrf_token": token, "agents": "x" * 5000}).status_code == 400
        stray = {"csrf_token": token, "agents": "reassign", "reassign_to": doomed_id}
        assert admin.post(path, data=stray).status_code == 400  # not to themselves
        admin_id = _user_id(site, site.admin_email)
        mine = {"csrf_token": token, "agents": "delete"}
        assert admin.post(f"/admin/users/{admin_id}/delete", data=mine).status_code == 400
        assert admin.post(path, data=mine).status_code == 303
        assert admin.post(path, data=mine).status_code == 404  # already gone
    assert _query(site, "SELECT COUNT(*) FROM agents WHERE owner_id = ?", doomed_id) == [(0,)]


def test_cli_deletes_users_and_asks_what_happens_to_agents(site: Site) -> None:
    server = site.server
    owner, heir = _new_user(site, "cliowner"), _new_user(site, "cliheir")
    agent = server.cli(
        "agents", "create", "--owner", owner, "--name", "CLI agent",
        "--provider", "scripted", "--model", "m",
    ).stdout.strip()  # fmt: skip
    refused = server.cli("users", "delete", owner, check=False)
    assert refused.returncode == 1 and "--reassign-to" in refused.stderr + refused.stdout
    both = server.cli(
        "users", "delete", owner, "--reassign-to", heir, "--delete-agents", check=False
    )
    assert both.returncode == 1
    done = server.cli("users", "delete", owner, "--reassign-to", heir)
    assert "1 agent(s) given to" in done.stdout and "ledger is kept" in done.stdout
    assert "0 stored response(s) deleted" in done.stdout
    assert _query(site, "SELECT owner_id FROM agents WHERE id = ?", agent) == [
        (_user_id(site, heir),)
    ]
    assert owner not in server.cli("users", "list").stdout
    plain = _new_user(site, "cliplain")
    assert "0 agent(s) deleted" in server.cli("users", "delete", plain).stdout
    missing = server.cli("users", "delete", "nobody@example.com", check=False)
    assert missing.returncode == 1
