"""Key budgets (`keys create --max-credits N --budget-period P`) and spend reports
(`usage report`), on SQLite and on PostgreSQL with two workers.

The fake agent's model costs 100 credits per input token and 400 per output token.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json

import httpx
import pytest

from tests.billing.conftest import BillingServer, Tenant, auth_of
from tests.billing.test_trust import fresh


@pytest.fixture(params=["sqlite", "postgres"])
def billing(request: pytest.FixtureRequest) -> BillingServer:
    fixture = "sqlite_billing" if request.param == "sqlite" else "postgres_billing"
    found: BillingServer = request.getfixturevalue(fixture)
    return found


def budget_key(billing: BillingServer, tenant: Tenant, credits: int, *period: str) -> str:
    extra = ["--budget-period", *period] if period else []
    return billing.server.cli(
        "keys", "create", tenant.email, "--name", "capped", "--max-credits", str(credits), *extra
    ).stdout.strip()


async def ask(
    client: httpx.AsyncClient, api: str, key: str, agent: str, text: str
) -> httpx.Response:
    body = {"model": agent, "messages": [{"role": "user", "content": text}]}
    return await client.post(f"{api}/chat/completions", json=body, headers=auth_of(key))


async def key_spend(billing: BillingServer, key: str) -> int:
    prefix = key[:8]
    value = await billing.scalar(
        "SELECT COALESCE(-SUM(t.credits), 0) FROM transactions t "
        "JOIN api_keys k ON k.id = t.api_key_id WHERE k.prefix = :p",
        p=prefix,
    )
    return int(value)


async def test_a_key_stops_at_its_budget_with_402_key_budget_exceeded(
    billing: BillingServer,
) -> None:
    tenant = await fresh(billing, 10_000_000)
    key = budget_key(billing, tenant, 30_000, "day")
    async with httpx.AsyncClient(timeout=60) as client:
        replies = [
            await ask(client, billing.api, key, tenant.fake_agent, "!tokens 20\nhi")
            for _ in range(12)
        ]
        other = await ask(client, billing.api, tenant.key, tenant.fake_agent, "!tokens 20\nhi")
    codes = [r.status_code for r in replies]
    assert 200 in codes and codes[-1] == 402, codes
    error = replies[-1].json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "key_budget_exceeded")
    assert "30000 credits per day" in error["message"]
    assert await key_spend(billing, key) <= 30_000
    assert other.status_code == 200  # the user's other key is not capped by it
    listed = billing.server.cli("keys", "list", tenant.email).stdout
    spent = await key_spend(billing, key)
    assert f"spent {spent}/30000 credits per day" in listed


async def test_concurrent_calls_cannot_overshoot_a_key_budget(billing: BillingServer) -> None:
    tenant = await fresh(billing, 10_000_000)
    key = budget_key(billing, tenant, 50_000)
    async with httpx.AsyncClient(timeout=60) as client:
        replies = await asyncio.gather(
            *(ask(client, billing.api, key, tenant.fake_agent, "!tokens 30\nhi") for _ in range(40))
        )
    codes = [r.status_code for r in replies]
    assert codes.count(200) >= 1 and 402 in codes, codes
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 402} == {
        "key_budget_exceeded"
    }
    assert await key_spend(billing, key) <= 50_000


@pytest.mark.parametrize(
    "args",
    [
        ["--max-credits", "0"],
        ["--max-credits", str(10**30)],
        ["--budget-period", "week"],
        ["--max-credits", "100", "--budget-period", "year"],
    ],
)
def test_bad_budgets_are_refused(sqlite_billing: BillingServer, args: list[str]) -> None:
    result = sqlite_billing.server.cli(
        "keys", "create", "nobody-budget@example.com", "--name", "x", *args, check=False
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error:"), result.stderr


async def test_usage_report_matches_the_ledger_in_every_format(billing: BillingServer) -> None:
    tenant = await fresh(billing, 10_000_000)
    async with httpx.AsyncClient(timeout=60) as client:
        for agent in (tenant.fake_agent, tenant.fake_agent, tenant.scripted_agent):
            reply = await ask(client, billing.api, tenant.key, agent, "!tokens 5\nhello")
            assert reply.status_code == 200, reply.text
    await asyncio.sleep(0.3)
    rows = await billing.rows(
        "SELECT agent_id, model, COUNT(DISTINCT request_id) AS requests, "
        "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
        "-SUM(credits) AS credits FROM transactions WHERE user_id = :u AND kind = 'usage' "
        "GROUP BY agent_id, model",
        u=tenant.user_id,
    )
    expected = {r["agent_id"]: r for r in rows}
    lines = billing.server.cli("usage", "report", "--by", "agent", "--format", "json").stdout
    reported = {row["agent"]: row for row in map(json.loads, lines.splitlines())}
    for agent_id, row in expected.items():
        got = reported[agent_id]
        for name in ("requests", "input_tokens", "output_tokens", "credits"):
            assert got[name] == int(row[name]), (agent_id, name)
    by_user = billing.server.cli("usage", "report", "--by", "user", "--format", "csv").stdout
    mine = [r for r in csv.DictReader(io.StringIO(by_user)) if r["user"] == tenant.email]
    assert int(mine[0]["credits"]) == sum(int(r["credits"]) for r in rows)
    table = billing.server.cli("usage", "report", "--by", "day").stdout
    assert table.splitlines()[0].split() == [
        "day", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "credits",
    ]  # fmt: skip
    future = billing.server.cli("usage", "report", "--by", "key", "--since", "2999-01-01")
    assert len(future.stdout.splitlines()) == 1  # the header only
    bad = billing.server.cli("usage", "report", "--by", "day", "--since", "yesterday", check=False)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
