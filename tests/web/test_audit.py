"""The audit log: who changed what, from the CLI and the web, read with `agenthost audit
list` and on the admin page; rows commit with their change and never show a secret."""

from __future__ import annotations

import getpass
import json
import re
import secrets
from typing import Any

import pytest

from agenthost.settings import Settings
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.repositories import audit, users
from tests.web.conftest import Site, csrf_of, sign_in


def audit_rows(site: Site, *args: str) -> list[dict[str, Any]]:
    out = site.server.cli("audit", "list", "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_cli_changes_are_recorded_with_the_cli_actor_and_no_secret(site: Site) -> None:
    email = f"audited-{secrets.token_hex(3)}@example.com"
    server = site.server
    server.add_user(email)
    key = server.create_key(email)
    key_id = server.cli("keys", "list", email).stdout.split("\t")[0]
    server.cli("keys", "revoke", key_id)
    server.cli("balance", "add", email, "1234")
    agent = server.create_agent(email, "scripted", "m", "--share-remote", f"user:{email}")
    mine = (email, key_id)
    rows = [
        row
        for row in audit_rows(site, "--limit", "1000")
        if row["target"] in mine or row["target_id"] in mine
    ]
    actions = [row["action"] for row in rows]
    for expected in ("user.added", "api_key.created", "api_key.revoked", "balance.granted"):
        assert expected in actions, actions
    agent_rows = audit_rows(site, "--target", agent)
    assert {row["action"] for row in agent_rows} == {"agent.created", "agent.shared"}
    assert all(row["actor"] == f"cli:{getpass.getuser()}" for row in rows + agent_rows)
    grant = next(row for row in rows if row["action"] == "balance.granted")
    assert grant["details"]["credits"] == 1234 and grant["target"] == email
    for row in rows:
        assert set(row) >= {"at", "actor", "action", "target", "details"}
    assert key not in json.dumps(rows) and key[8:20] not in json.dumps(rows)


def test_filters_since_and_actor(site: Site) -> None:
    site.server.cli("users", "add", f"since-{secrets.token_hex(3)}@example.com")
    assert audit_rows(site, "--since", "1h")
    assert audit_rows(site, "--since", "2099-01-01") == []
    assert audit_rows(site, "--actor", "nobody@example.com") == []
    bad = site.server.cli("audit", "list", "--since", "yesterday-ish", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr


def test_web_changes_and_sign_ins_are_recorded_with_the_admin_as_actor(site: Site) -> None:
    email = f"webaudit-{secrets.token_hex(3)}@example.com"
    site.add_user(email, "password-123")
    with site.client() as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        page = admin.get("/admin/users").text
        user_id = re.search(rf"{re.escape(email)}.*?/admin/users/([^/]+)/role", page, re.S)
        assert user_id, page
        token = csrf_of(page)
        reply = admin.post(
            f"/admin/users/{user_id.group(1)}/role", data={"csrf_token": token, "role": "admin"}
        )
        assert reply.status_code == 303
    with site.client() as stranger:
        sign_in(stranger, email, "wrong-password")
    rows = audit_rows(site, "--target", email)
    by_action = {row["action"]: row for row in rows}
    assert by_action["user.added"]["actor"] == site.admin_email
    changed = by_action["user.role_changed"]
    assert changed["actor"] == site.admin_email
    assert changed["details"] == {"before": {"role": "user"}, "after": {"role": "admin"}}
    failed = by_action["sign_in.failed"]
    assert failed["actor"] == email and "wrong-password" not in json.dumps(rows)
    signed = audit_rows(site, "--action", "sign_in.succeeded")
    assert any(row["actor"] == site.admin_email for row in signed)


def test_the_admin_page_lists_filters_and_is_for_admins_only(site: Site) -> None:
    email = f"pageaudit-{secrets.token_hex(3)}@example.com"
    site.add_user(email, "password-123")
    with site.client() as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        everything = admin.get("/admin/audit")
        assert everything.status_code == 200 and email in everything.text
        only_keys = admin.get("/admin/audit", params={"kind": "api_key."})
        assert only_keys.status_code == 200 and email not in only_keys.text
        by_target = admin.get("/admin/audit", params={"target": email})
        assert "user.added" in by_target.text
        odd = admin.get("/admin/audit", params={"before": "-5", "actor": "x" * 5000})
        assert odd.status_code == 200
        assert 400 <= admin.get("/admin/audit", params={"before": "abc"}).status_code < 500
    with site.client() as user:
        sign_in(user, email, "password-123")
        assert user.get("/admin/audit").status_code == 403


@pytest.mark.asyncio
async def test_an_audit_row_rolls_back_with_its_change(tmp_path: Any) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db", data_dir=tmp_path)
    db = Database(settings.database_url)
    try:
        await upgrade(db.engine)
        with pytest.raises(RuntimeError), audit.acting_as("tester@example.com"):
            async with db.session() as session:
                await users.create(session, "rolled@example.com")
                raise RuntimeError("the change fails after its audit row was added")
        async with db.session() as session:
            assert await audit.events(session, target="rolled@example.com") == []
            with audit.acting_as("tester@example.com"):
                await users.create(session, "kept@example.com")
        async with db.session() as session:
            kept = await audit.events(session, target="kept@example.com")
        assert [event.action for event in kept] == ["user.added"]
        assert kept[0].actor == "tester@example.com"
    finally:
        await db.dispose()
