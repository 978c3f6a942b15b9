"""Spend reports in the web: Admin → Usage (charts, table, CSV) and the user's CSV, read
from the rollups; key budgets set in Settings → API keys."""

from __future__ import annotations

import csv
import io
import secrets
import sqlite3

import httpx

from tests.web.conftest import Site, csrf_of, sign_in


def test_a_key_budget_is_set_in_settings_and_shown_against_spend(site: Site) -> None:
    email = f"budget-{secrets.token_hex(3)}@example.com"
    site.add_user(email, "budget-password-1")
    with httpx.Client(base_url=site.server.url, timeout=30) as client:
        sign_in(client, email, "budget-password-1")
        token = csrf_of(client.get("/settings/keys").text)
        base = {"csrf_token": token, "name": "capped", "expires": "7"}
        for bad in ("abc", "0", "1" * 16):
            refused = client.post("/settings/keys", data={**base, "max_credits": bad})
            assert refused.status_code == 400, bad
        made = client.post(
            "/settings/keys",
            data={**base, "max_credits": "50000", "budget_period": "day"},
            follow_redirects=True,
        )
        assert made.status_code == 200 and "sk-" in made.text
        listed = client.get("/settings/keys").text
        assert "0 / 50,000 per day" in listed
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        row = db.execute(
            "SELECT max_credits, budget_period FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE u.email = ?",
            (email,),
        ).fetchone()
    assert row == (50000, "day")


def test_admin_usage_page_and_csv_show_everyones_spend(site: Site) -> None:
    server = site.server
    email = f"spender-{secrets.token_hex(3)}@example.com"
    site.add_user(email, "spender-password-1")
    agent = server.cli(
        "agents", "create", "--owner", email, "--name", "=HYPERLINK(\"x\")", "--provider",
        "fake", "--model", "gpt-4o-mini",
    ).stdout.strip()  # fmt: skip
    key = site.create_key(email, "spender-password-1")
    for _ in range(3):
        reply = httpx.post(
            f"{server.api}/chat/completions",
            json={"model": agent, "messages": [{"role": "user", "content": "!tokens 40\nhi"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert reply.status_code == 200
    with httpx.Client(base_url=server.url, timeout=30) as admin:
        sign_in(admin, site.admin_email, site.admin_password)
        page = admin.get("/admin/usage", params={"by": "user", "days": 7})
        assert page.status_code == 200 and email in page.text and "<svg" in page.text
        download = admin.get("/admin/usage.csv", params={"by": "user", "days": 7})
        assert download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.text)))
        mine = next(row for row in rows if row["user"] == email)
        assert int(mine["requests"]) == 3 and int(mine["credits"]) > 0
        by_agent = list(
            csv.DictReader(io.StringIO(admin.get("/admin/usage.csv", params={"by": "agent"}).text))
        )
        assert any(row["agent"] == '\'=HYPERLINK("x")' for row in by_agent)  # no formula
        odd = admin.get("/admin/usage", params={"by": "nonsense", "days": 12345})
        assert odd.status_code == 200
    with httpx.Client(base_url=server.url, timeout=30) as user:
        sign_in(user, email, "spender-password-1")
        assert user.get("/admin/usage").status_code == 403
        own = list(csv.DictReader(io.StringIO(user.get("/usage.csv", params={"by": "model"}).text)))
        assert [row["model"] for row in own] == ["gpt-4o-mini"] and own[0]["requests"] == "3"
