"""Balances cannot be overspent: long replies, prompts that tokenizers would count high,
and upstreams that talk past their cap or lie about usage, on SQLite (one worker) and on
PostgreSQL with Redis (two workers), through both interfaces, HTTP and WebSocket.

The fake agent's model is priced at 100 credits per input token and 400 per output token
(conftest.PRICING), so a few thousand credits run out within one reply.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.billing.conftest import BillingServer, Tenant, auth_of

IN, OUT = 100, 400  # credits per token of gpt-4o-mini in these tests
MODES = ["chat-json", "chat-sse", "responses-json", "responses-sse", "responses-ws"]


@pytest.fixture(params=["sqlite", "postgres"])
def billing(request: pytest.FixtureRequest) -> BillingServer:
    fixture = "sqlite_billing" if request.param == "sqlite" else "postgres_billing"
    found: BillingServer = request.getfixturevalue(fixture)
    return found


def _body(mode: str, agent: str, prompt: str) -> dict[str, Any]:
    if mode.startswith("chat"):
        body: dict[str, Any] = {"model": agent, "messages": [{"role": "user", "content": prompt}]}
        if mode == "chat-sse":
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return body
    body = {"model": agent, "input": prompt}
    if mode == "responses-sse":
        body["stream"] = True
    return body


def call(billing: BillingServer, tenant: Tenant, mode: str, prompt: str) -> dict[str, Any]:
    """One request; returns {"status", "error"} (the error as HTTP body or stream signal)."""
    agent = tenant.fake_agent
    if mode == "responses-ws":
        return _websocket_call(billing, tenant, prompt)
    path = "/chat/completions" if mode.startswith("chat") else "/responses"
    body = _body(mode, agent, prompt)
    with httpx.stream(
        "POST", billing.api + path, json=body, headers=auth_of(tenant.key), timeout=60
    ) as reply:
        reply.read()
        if reply.status_code != 200:
            return {"status": reply.status_code, "error": reply.json()["error"]}
        if not mode.endswith("sse"):
            return {"status": 200, "error": None}
        error = None
        for line in reply.text.splitlines():
            if line.startswith("data: {"):
                data = json.loads(line[6:])
                if "error" in data and data.get("type") in (None, "error"):
                    error = data["error"]
        return {"status": 200, "error": error}


def _websocket_call(billing: BillingServer, tenant: Tenant, prompt: str) -> dict[str, Any]:
    url = billing.api.replace("http://", "ws://") + "/responses"
    headers = {"Authorization": f"Bearer {tenant.key}"}
    with connect(url, additional_headers=headers, max_size=None) as socket:
        create = {"type": "response.create", "model": tenant.fake_agent, "input": prompt}
        socket.send(json.dumps(create))
        while True:
            event = json.loads(socket.recv(timeout=60))
            if event["type"] == "error" and "status" in event:
                return {"status": event["status"], "error": event["error"]}
            if event["type"] in ("response.completed", "response.incomplete"):
                return {"status": 200, "error": None}
            if event["type"] == "response.failed":
                return {"status": 200, "error": event["response"]["error"]}


async def settled(billing: BillingServer, tenant: Tenant, rows: int) -> int:
    """The balance once `rows` usage transactions exist (settles follow the reply)."""
    for _ in range(100):
        count = await billing.scalar(
            "SELECT COUNT(*) FROM transactions WHERE user_id = :u AND kind = 'usage'",
            u=tenant.user_id,
        )
        if count >= rows:
            break
        await asyncio.sleep(0.05)
    balance = await billing.balance(tenant.user_id)
    assert balance is not None
    return balance


async def assert_whole(billing: BillingServer, tenant: Tenant, start: int) -> int:
    """balance = start + every transaction since, balance ≥ 0, and integers in the DB."""
    balance = await billing.balance(tenant.user_id)
    assert balance is not None and balance >= 0, balance
    usage = await billing.scalar(
        "SELECT COALESCE(SUM(credits), 0) FROM transactions WHERE user_id = :u AND kind = 'usage'",
        u=tenant.user_id,
    )
    assert balance == start + int(usage)
    rows = await billing.rows(
        "SELECT credits, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "reasoning_tokens FROM transactions WHERE user_id = :u AND kind = 'usage'",
        u=tenant.user_id,
    )
    for row in rows:
        for name, value in row.items():
            assert type(value) is int, (name, value)
            assert value <= 0 if name == "credits" else value >= 0, (name, value)  # no minting
    return balance


async def fresh(billing: BillingServer, credits: int) -> Tenant:
    tenant = await billing.tenant()
    await billing.set_balance(tenant, credits)
    return tenant


def sent_caps(billing: BillingServer, upstream_url: str, word: str) -> list[int | None]:
    records = httpx.get(upstream_url.removesuffix("/v1") + "/_requests", timeout=10).json()
    return [
        r["body"].get("max_completion_tokens")
        for r in records
        if word in json.dumps(r.get("body", {}))
    ]


# --- 1. long replies ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_long_reply_is_capped_to_what_the_balance_can_pay(
    billing: BillingServer, upstream_url: str, mode: str
) -> None:
    tenant = await fresh(billing, 50_000)
    word = "w" + secrets.token_hex(6)
    outcome = await asyncio.to_thread(call, billing, tenant, mode, f"!tokens 3000\n{word}")
    assert outcome["status"] == 200, outcome
    (cap,) = sent_caps(billing, upstream_url, word)
    # The prompt's bound costs well under 10,000 credits here: the rest pays the cap.
    assert cap is not None and 100 <= cap <= 50_000 // OUT, cap
    balance = await settled(billing, tenant, 1)
    assert 0 <= balance < 50_000
    await assert_whole(billing, tenant, 50_000)


@pytest.mark.parametrize("mode", ["chat-sse", "responses-json", "responses-ws"])
async def test_an_upstream_that_talks_past_its_cap_is_charged_at_most_the_cap(
    billing: BillingServer, upstream_url: str, mode: str
) -> None:
    tenant = await fresh(billing, 50_000)
    word = "w" + secrets.token_hex(6)
    prompt = f"!tokens 3000\n!ignorecap\n{word}"
    outcome = await asyncio.to_thread(call, billing, tenant, mode, prompt)
    assert outcome["status"] == 200, outcome
    (cap,) = sent_caps(billing, upstream_url, word)
    await settled(billing, tenant, 1)
    balance = await assert_whole(billing, tenant, 50_000)
    assert cap is not None and balance >= 0
    (row,) = await billing.rows(
        "SELECT output_tokens FROM transactions WHERE user_id = :u AND kind = 'usage'",
        u=tenant.user_id,
    )
    assert row["output_tokens"] == cap  # reported 3,000: recorded at the cap sent


@pytest.mark.parametrize("mode", MODES)
async def test_a_balance_that_cannot_pay_a_useful_answer_is_402_before_the_upstream(
    billing: BillingServer, upstream_url: str, mode: str
) -> None:
    tenant = await fresh(billing, 9_000)  # the prompt's bound alone is about 6,000 credits
    word = "w" + secrets.token_hex(6)
    outcome = await asyncio.to_thread(call, billing, tenant, mode, f"!tokens 30\n{word}")
    assert outcome["status"] == 402, outcome
    assert outcome["error"]["code"] == "insufficient_balance"
    assert sent_caps(billing, upstream_url, word) == []
    assert await assert_whole(billing, tenant, 9_000) == 9_000


# --- 2. the input estimate is a bound -------------------------------------------------


@pytest.mark.parametrize("mode", ["chat-json", "responses-sse", "responses-ws"])
@pytest.mark.parametrize("filler", ["\u00a0", " ", "\t", "\n"])
async def test_whitespace_is_counted_at_its_bound(
    billing: BillingServer, upstream_url: str, mode: str, filler: str
) -> None:
    # "hi" and 400,000 whitespace characters: once estimated at 0 tokens and admitted
    # (then charged what the upstream counted, far beyond this balance). 400,000 keeps a
    # WebSocket message, where JSON escapes NBSP as six bytes, under the body limit.
    tenant = await fresh(billing, 500_000)
    word = "w" + secrets.token_hex(6)
    outcome = await asyncio.to_thread(call, billing, tenant, mode, f"{word} hi" + filler * 400_000)
    assert outcome["status"] == 402, outcome
    assert sent_caps(billing, upstream_url, word) == []
    assert await assert_whole(billing, tenant, 500_000) == 500_000


# --- 3. a lying upstream cannot mint or burn money ------------------------------------

LIES = {
    "negative": {"prompt_tokens": -200_000_000, "completion_tokens": -5},
    "huge": {"prompt_tokens": 1e30, "completion_tokens": 3},
    "fractional": {"prompt_tokens": 12.5, "completion_tokens": 2.25},
    "strings": {"prompt_tokens": "many", "completion_tokens": "some"},
    "bools": {"prompt_tokens": True, "completion_tokens": True},
    "over_bound": {"prompt_tokens": 348_984, "completion_tokens": 10**9},
    "cache_over_input": {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 10**6, "cache_write_tokens": -3},
        "completion_tokens_details": {"reasoning_tokens": 10**6},
    },
    "not_an_object": "lots",
    "missing": {},
}


@pytest.mark.parametrize("lie", sorted(LIES))
@pytest.mark.parametrize("mode", ["chat-sse", "responses-json"])
async def test_lying_usage_is_validated_and_clamped(
    billing: BillingServer, upstream_url: str, mode: str, lie: str
) -> None:
    tenant = await fresh(billing, 50_000)
    word = "w" + secrets.token_hex(6)
    prompt = f"!text a short answer\n!usage {json.dumps(LIES[lie])}\n{word}"
    outcome = await asyncio.to_thread(call, billing, tenant, mode, prompt)
    assert outcome == {"status": 200, "error": None}
    (cap,) = sent_caps(billing, upstream_url, word)
    balance = await settled(billing, tenant, 1)
    assert balance < 50_000  # something was charged: never nothing, never a credit
    (row,) = await billing.rows(
        "SELECT input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, credits "
        "FROM transactions WHERE user_id = :u AND kind = 'usage'",
        u=tenant.user_id,
    )
    assert 0 < row["input_tokens"] <= 400  # at most the prompt's bound (its bytes + markers)
    assert 0 <= row["output_tokens"] <= cap
    assert row["cache_read_tokens"] <= row["input_tokens"]
    assert row["reasoning_tokens"] <= row["output_tokens"]
    assert -row["credits"] == 50_000 - balance
    await assert_whole(billing, tenant, 50_000)


# --- 4. random concurrent traffic keeps the books whole --------------------------------

DIRECTIVES = [
    "!tokens 40",
    "!tokens 400",
    "!tokens 3000\n!ignorecap",
    "!text fine",
    '!usage {"prompt_tokens": -1000000, "completion_tokens": 1}',
    '!usage {"prompt_tokens": 5, "completion_tokens": -100000}',
    "!tokens 3000\n!ignorecap",
    '!usage {"prompt_tokens": 1e30, "completion_tokens": 1e30}',
    "!nousage\n!tokens 60",
    "!cut\n!tokens 50",
]


async def _one(client: httpx.AsyncClient, tenant: Tenant, directive: str, leave: bool) -> None:
    mode = random.choice(["chat-sse", "responses-sse", "chat-json", "responses-json"])
    path = "/chat/completions" if mode.startswith("chat") else "/responses"
    body = _body(mode, tenant.fake_agent, directive + "\n" + secrets.token_hex(4))
    try:
        async with client.stream("POST", path, json=body, headers=auth_of(tenant.key)) as r:
            async for _ in r.aiter_lines():
                if leave:
                    return  # the client goes away mid-stream
    except httpx.HTTPError:
        pass


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    plan=st.lists(st.tuples(st.sampled_from(DIRECTIVES), st.booleans()), min_size=6, max_size=12),
    start=st.integers(min_value=0, max_value=1_500_000),
)
@example(  # a balance the old 1,024-token reserve admitted, and replies past it
    plan=[("!tokens 3000\n!ignorecap", False)] * 3 + [("!tokens 400", True)] * 3,
    start=1_000_000,
)
@example(plan=[(d, n % 2 == 0) for n, d in enumerate(DIRECTIVES)], start=700_000)
async def test_random_concurrent_traffic_never_overdraws(
    billing: BillingServer, plan: list[tuple[str, bool]], start: int
) -> None:
    tenant = await fresh(billing, start)
    async with httpx.AsyncClient(base_url=billing.api, timeout=60) as client:
        await asyncio.gather(*(_one(client, tenant, d, leave) for d, leave in plan))
    await asyncio.sleep(0.5)  # settles of dropped clients run just after
    await assert_whole(billing, tenant, start)
