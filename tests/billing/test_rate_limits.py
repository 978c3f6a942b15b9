"""Rate limits through the API: 429 with Retry-After, x-ratelimit-* headers on success,
tokens corrected at settle, concurrency freed when a run ends; shared by two workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agenthost.storage.database import Database
from tests.billing.conftest import SHARED_RPM, BillingServer, Tenant, auth_of, billing_config
from tests.support.server import free_port, running_server

HEADERS = [
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
]


@pytest.fixture(scope="module")
async def limited(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str
) -> AsyncIterator[BillingServer]:
    """Tight per-key limits, and a Redis that is down: limits must hold in-process."""
    folder = tmp_path_factory.mktemp("limited")
    limits = {
        "per_key": {
            "requests_per_minute": 3,
            "tokens_per_minute": 3000,
            "concurrent_requests": 1,
        }
    }
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with running_server(
        folder, upstream_url, billing_config(limits=limits, redis_url=dead_redis)
    ) as server:
        db = Database(f"sqlite+aiosqlite:///{folder}/agenthost.db")
        try:
            yield BillingServer(server, db)
        finally:
            await db.dispose()


async def ask(
    client: httpx.AsyncClient, billing: BillingServer, tenant: Tenant, text: str, **extra: Any
) -> httpx.Response:
    body = {
        "model": tenant.scripted_agent,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 100,
        **extra,
    }
    return await client.post(
        f"{billing.api}/chat/completions", json=body, headers=auth_of(tenant.key)
    )


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")


async def test_requests_per_minute_with_headers_then_429(limited: BillingServer) -> None:
    tenant = await limited.tenant()
    async with httpx.AsyncClient(timeout=30) as client:
        first = await ask(client, limited, tenant, "hi")
        streamed = await ask(client, limited, tenant, "hi", stream=True)
        third = await ask(client, limited, tenant, "hi")
        refused = await ask(client, limited, tenant, "hi")
    for response in (first, streamed, third):
        assert response.status_code == 200, response.text
        assert all(name in response.headers for name in HEADERS), response.headers
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in (first, streamed, third)] == [
        "2",
        "1",
        "0",
    ]
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert_rate_limited(refused)
    assert "per minute" in refused.json()["error"]["message"]


async def test_open_responses_carry_the_same_headers(limited: BillingServer) -> None:
    tenant = await limited.tenant()
    body = {"model": tenant.scripted_agent, "input": "hi", "max_output_tokens": 100}
    url = f"{limited.api}/responses"
    async with httpx.AsyncClient(timeout=30) as client:
        whole = await client.post(url, json=body, headers=auth_of(tenant.key))
        streamed = await client.post(
            url, json={**body, "stream": True}, headers=auth_of(tenant.key)
        )
    for response in (whole, streamed):
        assert response.status_code == 200, response.text
        assert all(name in response.headers for name in HEADERS), response.headers
        assert response.headers["x-agenthost-served-by"] == "scripted:scripted-model"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in (whole, streamed)] == ["2", "1"]


async def test_concurrent_requests_are_capped_and_freed_when_a_run_ends(
    limited: BillingServer,
) -> None:
    tenant = await limited.tenant()
    async with httpx.AsyncClient(timeout=30) as client:
        slow = asyncio.ensure_future(ask(client, limited, tenant, "!sleep 1500\nhi"))
        await asyncio.sleep(0.5)
        while_running = await ask(client, limited, tenant, "hi")
        assert (await slow).status_code == 200
        after = await ask(client, limited, tenant, "hi")
    assert_rate_limited(while_running)
    assert "concurrent" in while_running.json()["error"]["message"]
    assert after.status_code == 200, after.text


async def test_tokens_per_minute_count_the_estimate_and_settle_to_actual(
    limited: BillingServer,
) -> None:
    tenant = await limited.tenant()
    async with httpx.AsyncClient(timeout=30) as client:
        # Each request counts ~2000 tokens (its max_tokens) until it settles to ~10.
        first = await ask(client, limited, tenant, "hi", max_tokens=2000)
        second = await ask(client, limited, tenant, "hi", max_tokens=2000)
        too_big = await ask(client, limited, tenant, "hi", max_tokens=3000)
    assert first.status_code == 200 and second.status_code == 200, second.text
    remaining = int(second.headers["x-ratelimit-remaining-tokens"])
    assert 0 < remaining < 1000  # the first request counted at its actual size by now
    assert_rate_limited(too_big)
    assert "tokens per minute" in too_big.json()["error"]["message"]


def test_redis_outage_is_logged_not_silent(limited: BillingServer) -> None:
    assert "Redis is unreachable" in limited.server.log()


async def test_two_workers_share_one_rate_limit(postgres_billing: BillingServer) -> None:
    tenant = await postgres_billing.tenant()
    await postgres_billing.set_balance(tenant, 10**10)  # the balance is not the limit here
    extra = SHARED_RPM // 10
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(ask(client, postgres_billing, tenant, "hi") for _ in range(SHARED_RPM + extra))
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == SHARED_RPM, statuses
    for response in responses:
        if response.status_code != 200:
            assert_rate_limited(response)
