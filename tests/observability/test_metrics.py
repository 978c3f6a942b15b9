"""`GET /metrics`: what a Prometheus scrape of a real server sees, against the ledger."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import Server, running_server

TOKEN = "scrape-token-0123456789"
CHAT = "/api/agents/v1/chat/completions"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return samples(reply.text)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Server]:
    overrides = {
        "observability": {"metrics": {"bearer_token": TOKEN}},
        "limits": {"per_user": {"requests_per_minute": 5}},
    }
    folder = tmp_path_factory.mktemp("metered")
    with running_server(folder, upstream_url, overrides) as server:
        yield server


def test_a_scrape_without_the_bearer_token_is_refused_in_the_error_shape(metered: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        reply = httpx.get(f"{metered.url}/metrics", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "invalid_token"


def test_requests_tokens_and_credits_match_what_happened_and_the_ledger(metered: Server) -> None:
    server = metered
    server.add_user("paid@example.com")
    agent = server.create_agent("paid@example.com", "fake", "gpt-4o-mini")
    client = openai.OpenAI(base_url=server.api, api_key=server.create_key("paid@example.com"))
    messages = [{"role": "user", "content": "!tokens 30\nhello"}]
    client.chat.completions.create(model=agent, messages=messages)  # type: ignore[arg-type]
    client.chat.completions.create(model=agent, messages=messages)  # type: ignore[arg-type]
    for _ in client.chat.completions.create(model=agent, messages=messages, stream=True):  # type: ignore[arg-type]
        pass
    answer = client.responses.create(model=agent, input="hi there")
    client.responses.retrieve(answer.id)

    server.add_user("broke@example.com")
    broke_agent = server.create_agent("broke@example.com", "fake", "gpt-4o-mini")
    start = int(server.cli("balance", "show", "broke@example.com").stdout.split(": ")[1].split()[0])
    server.cli("balance", "add", "broke@example.com", "--", str(-start))
    broke = openai.OpenAI(
        base_url=server.api, api_key=server.create_key("broke@example.com"), max_retries=0
    )
    with pytest.raises(openai.APIStatusError) as refused:
        broke.chat.completions.create(model=broke_agent, messages=messages)  # type: ignore[arg-type]
    assert refused.value.status_code == 402

    server.add_user("busy@example.com")
    busy_agent = server.create_agent("busy@example.com", "scripted", "m")
    busy = openai.OpenAI(
        base_url=server.api, api_key=server.create_key("busy@example.com"), max_retries=0
    )
    statuses = []
    for _ in range(7):
        try:
            busy.chat.completions.create(model=busy_agent, messages=messages)  # type: ignore[arg-type]
            statuses.append(200)
        except openai.RateLimitError:
            statuses.append(429)
    assert statuses.count(429) == 2
    for sdk in (client, broke, busy):
        sdk.close()

    scraped = scrape(server)
    total = "agenthost_requests_total"
    assert value(scraped, total, route=CHAT, status="200", interface="chat") == 3 + 5
    assert value(scraped, total, route=CHAT, status="402", interface="chat") == 1
    assert value(scraped, total, route=CHAT, status="429", interface="chat") == 2
    responses = "/api/agents/v1/responses"
    assert value(scraped, total, route=responses, status="200", interface="responses") == 1
    by_id = "/api/agents/v1/responses/{response_id}"
    assert value(scraped, total, route=by_id, status="200", interface="responses") == 1
    count = "agenthost_request_duration_seconds_count"
    assert value(scraped, count, route=CHAT, interface="chat") == 3 + 5 + 1 + 2
    assert value(scraped, "agenthost_insufficient_balance_total") == 1
    assert value(scraped, "agenthost_rate_limited_total", scope="user") == 2
    assert value(scraped, "agenthost_active_streams") == 0
    assert value(scraped, "agenthost_active_runs") == 0
    first = "agenthost_time_to_first_token_seconds_count"
    assert value(scraped, first, provider="fake") == 4

    # Tokens and credits are exactly the ledger's, kind by kind.
    with sqlite3.connect(Path(server.folder) / "agenthost.db") as db:
        ledger = db.execute(
            "SELECT model, SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
            " SUM(cache_write_tokens), -SUM(credits) FROM transactions WHERE kind = 'usage'"
            " GROUP BY model"
        ).fetchall()
    by_model = {row[0]: row[1:] for row in ledger}
    inputs, outputs, read, write, credits = by_model["gpt-4o-mini"]
    assert outputs >= 3 * 30 and credits > 0
    tokens = "agenthost_tokens_total"
    labels = {"provider": "fake", "model": "gpt-4o-mini"}
    assert value(scraped, tokens, kind="input", **labels) == inputs
    assert value(scraped, tokens, kind="output", **labels) == outputs
    assert value(scraped, tokens, kind="cache_read", **labels) == read
    assert value(scraped, tokens, kind="cache_write", **labels) == write
    assert value(scraped, "agenthost_credits_charged_total", **labels) == credits


def test_no_label_holds_an_email_a_key_or_an_id(metered: Server) -> None:
    reply = httpx.get(f"{metered.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "@" not in reply.text
    assert "sk-" not in reply.text
    assert "agent_" not in reply.text and "resp_" not in reply.text


def test_a_scrape_of_any_worker_counts_the_whole_server(tmp_path: Path, upstream_url: str) -> None:
    overrides = {"observability": {"metrics": {"bearer_token": TOKEN}}}
    with running_server(tmp_path / "two", upstream_url, overrides, start=False) as server:
        server.start(workers=2)
        server.add_user("many@example.com")
        agent = server.create_agent("many@example.com", "scripted", "m")
        key = server.create_key("many@example.com")
        body = {"model": agent, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(12):  # new connections: the kernel spreads them over the workers
            with httpx.Client() as fresh:
                reply = fresh.post(
                    f"{server.api}/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert reply.status_code == 200
        for _ in range(6):
            with httpx.Client() as fresh:
                text = fresh.get(
                    f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                ).text
            found = value(
                samples(text),
                "agenthost_requests_total",
                route=CHAT,
                status="200",
                interface="chat",
            )
            assert found == 12
