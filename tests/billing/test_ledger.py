"""The ledger against real servers: on SQLite (one worker) and on PostgreSQL (two workers
sharing Redis). Every test reads the database with SQL to check that the balance equals
`start_balance` plus the sum of the user's transactions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from tests.billing.conftest import START_BALANCE, BillingServer, Tenant, auth_of


@pytest.fixture(params=["sqlite", "postgres"])
def billing(request: pytest.FixtureRequest) -> BillingServer:
    name = "sqlite_billing" if request.param == "sqlite" else "postgres_billing"
    found: BillingServer = request.getfixturevalue(name)
    return found


def chat(agent: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": agent, "messages": [{"role": "user", "content": text}], **extra}


async def post(client: httpx.AsyncClient, billing: BillingServer, tenant: Tenant, body: Any) -> Any:
    return await client.post(
        f"{billing.api}/chat/completions", json=body, headers=auth_of(tenant.key)
    )


async def assert_ledger_whole(billing: BillingServer, tenant: Tenant) -> int:
    """balance == start_balance + sum(transactions); returns the balance."""
    balance = await billing.balance(tenant.user_id)
    assert balance is not None
    assert balance == START_BALANCE + await billing.transactions_sum(tenant.user_id)
    return balance


async def usage_rows(billing: BillingServer, tenant: Tenant) -> list[Any]:
    return await billing.rows(
        "SELECT * FROM transactions WHERE user_id = :u AND kind = 'usage' ORDER BY id",
        u=tenant.user_id,
    )


async def test_concurrent_requests_never_overdraw_the_balance(billing: BillingServer) -> None:
    tenant = await billing.tenant()
    # Each run reserves ~10,000 credits (10 output tokens at 1000 plus its prompt) and
    # uses almost all of it, so without a reservation shared by every worker some runs
    # would be admitted against credits that others already hold: an overdraft.
    await billing.set_balance(tenant, 300_000)
    body = chat(tenant.scripted_agent, "!sleep 1000\n!tokens 10\nhi", max_tokens=10)
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(*(post(client, billing, tenant, body) for _ in range(200)))
    ok = [r.json()["id"] for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert ok and refused, [r.status_code for r in responses][:5]
    assert all(r.status_code == 402 for r in refused)
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_balance"}
    balance = await assert_ledger_whole(billing, tenant)
    assert 0 <= balance < 10_000  # spent down to less than one run, never below zero
    assert len(ok) <= 300_000 // 10_000
    rows = await usage_rows(billing, tenant)
    assert sorted(row["request_id"] for row in rows) == sorted(ok)  # one charge per run
    for row in rows:
        rates = orjson.loads(row["rates"]) if isinstance(row["rates"], str) else row["rates"]
        micro = row["input_tokens"] * rates["input"] + row["output_tokens"] * rates["output"]
        charged = -(-micro // 1_000_000)  # rounded up to a whole credit
        assert row["credits"] == -charged
        assert row["api_key_id"] == tenant.key_id and row["agent_id"] == tenant.scripted_agent


async def test_user_first_seen_through_the_api_starts_at_start_balance(
    billing: BillingServer,
) -> None:
    tenant = await billing.tenant()
    assert await billing.balance(tenant.user_id) is None  # never logged in, no balance yet
    async with httpx.AsyncClient(timeout=30) as client:
        response = await post(client, billing, tenant, chat(tenant.scripted_agent, "hello"))
    assert response.status_code == 200, response.text
    rows = await usage_rows(billing, tenant)
    assert len(rows) == 1 and rows[0]["credits"] < 0
    assert await assert_ledger_whole(billing, tenant) == START_BALANCE + rows[0]["credits"]


async def test_openai_cached_tokens_are_charged_at_the_cache_read_rate(
    billing: BillingServer,
) -> None:
    tenant = await billing.tenant()
    words = " ".join(["word"] * 60)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await post(
            client, billing, tenant, chat(tenant.fake_agent, f"{words}\n!cached 40")
        )
    assert response.status_code == 200, response.text
    (row,) = await usage_rows(billing, tenant)
    assert row["input_tokens"] == 62 and row["cache_read_tokens"] == 40
    # gpt-4o-mini here: input 100, cache_read 10, output 400 credits per token
    assert row["credits"] == -(22 * 100 + 40 * 10 + row["output_tokens"] * 400)
    await assert_ledger_whole(billing, tenant)


async def test_anthropic_cache_writes_and_reads_are_charged_at_their_rates(
    billing: BillingServer,
) -> None:
    tenant = await billing.tenant()
    # A prompt long enough for the 1,000 input tokens the scripted upstream reports (a
    # report above what the prompt can hold would be clamped to its bound).
    prompt = "hi " * 400
    async with httpx.AsyncClient(timeout=30) as client:
        response = await post(client, billing, tenant, chat(tenant.anthropic_agent, prompt))
    assert response.status_code == 200, response.text
    (row,) = await usage_rows(billing, tenant)
    assert (row["input_tokens"], row["cache_write_tokens"], row["cache_read_tokens"]) == (
        1000,
        300,
        500,
    )
    # 200 plain × 3 + 300 written × 3.75 + 500 read × 0.3 + 40 out × 15
    assert row["credits"] == -2475
    await assert_ledger_whole(billing, tenant)


async def test_abandoned_stream_is_charged_once_for_what_was_generated(
    billing: BillingServer,
) -> None:
    tenant = await billing.tenant()
    body = chat(tenant.fake_agent, "!tokens 50\n!stall 3000\n!nousage", stream=True)
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST", f"{billing.api}/chat/completions", json=body, headers=auth_of(tenant.key)
        ) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"content":"tok' in line.replace(" ", ""):
                request_id = orjson.loads(line[6:])["id"]
                break
    rows: list[Any] = []
    for _ in range(50):  # the server settles as soon as it sees the disconnect
        rows = await usage_rows(billing, tenant)
        if rows:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    rows = await usage_rows(billing, tenant)
    assert len(rows) == 1, rows
    assert rows[0]["request_id"] == request_id
    assert rows[0]["output_tokens"] > 0 and rows[0]["input_tokens"] > 0  # both estimated
    assert rows[0]["credits"] < 0
    await assert_ledger_whole(billing, tenant)


async def test_insufficient_balance_is_402_and_nothing_reaches_upstream(
    sqlite_billing: BillingServer, upstream_url: str
) -> None:
    billing = sqlite_billing
    tenant = await billing.tenant()
    await billing.set_balance(tenant, 5)
    marker = f"marker-{tenant.user_id}"
    async with httpx.AsyncClient(timeout=30) as client:
        for stream in (False, True):
            body = chat(tenant.fake_agent, marker, stream=stream)
            response = await post(client, billing, tenant, body)
            assert response.status_code == 402
            assert response.json()["error"] == {
                "message": response.json()["error"]["message"],
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_balance",
            }
        seen = (await client.get(upstream_url.removesuffix("/v1") + "/_requests")).json()
    assert not [r for r in seen if marker in orjson.dumps(r.get("body")).decode()]
    assert await usage_rows(billing, tenant) == []
    assert await assert_ledger_whole(billing, tenant) == 5


async def test_usage_endpoint_reports_balance_by_day_agent_and_key(
    sqlite_billing: BillingServer,
) -> None:
    billing = sqlite_billing
    tenant = await billing.tenant()
    async with httpx.AsyncClient(timeout=30) as client:
        for agent in (tenant.scripted_agent, tenant.anthropic_agent, tenant.anthropic_agent):
            # long enough to hold the 1,000 input tokens the scripted upstream reports
            reply = await post(client, billing, tenant, chat(agent, "hi " * 400))
            assert reply.status_code == 200
        response = await client.get(f"{billing.api}/usage?days=7", headers=auth_of(tenant.key))
    assert response.status_code == 200
    usage = response.json()
    balance = await assert_ledger_whole(billing, tenant)
    assert usage["balance"]["credits"] == balance
    spent = START_BALANCE - balance
    assert sum(day["credits"] for day in usage["by_day"]) == spent
    by_agent = {row["agent_id"]: row for row in usage["by_agent"]}
    assert by_agent[tenant.anthropic_agent]["credits"] == 2 * 2475
    assert by_agent[tenant.anthropic_agent]["cache_read_tokens"] == 1000
    assert by_agent[tenant.scripted_agent]["requests"] == 1
    assert [row["api_key_id"] for row in usage["by_key"]] == [tenant.key_id]
    assert len(usage["transactions"]) == 3
    assert usage["transactions"][0]["kind"] == "usage"


async def test_balance_cli_shows_and_grants(sqlite_billing: BillingServer) -> None:
    billing = sqlite_billing
    tenant = await billing.tenant()
    granted = billing.server.cli("balance", "add", tenant.email, "2500").stdout
    assert f"{START_BALANCE + 2500} credits" in granted
    shown = billing.server.cli("balance", "show", tenant.email).stdout
    assert f"{START_BALANCE + 2500} credits" in shown and "grant\t+2500" in shown
    assert await assert_ledger_whole(billing, tenant) == START_BALANCE + 2500
