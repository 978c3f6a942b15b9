"""Fallbacks and the circuit breaker, end to end: a real server, the real `openai` SDK,
and three fake upstream processes (a primary that the test makes fail, a backup priced
differently, and a primary whose breaker is under test), plus a closed port.

A primary failing before its first token (refused, 503 after its retries, timeout) is
served by the backup on both interfaces, streamed and not; the ledger row is priced at
the backup's model and names its provider; `x-agenthost-served-by` and the stored
response say who served. After the first token nothing falls back. A dead provider's
breaker opens, so the next calls skip it (its request log stays empty), and after the
cool-down one trial call closes it again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.process import start_process, stop_process
from tests.reliability.support import marker, upstream_records
from tests.support.server import Server, free_port, running_server

FAKES = Path(__file__).parents[1] / "fakes"
OWNER = "fallbacks@example.com"
PRIMARY_MODEL, BACKUP_MODEL = "primary-model", "backup-model"
# Credits per token (USD per 1M tokens x 1,000,000 / 1M): distinct, so a row shows its price.
PRICES = {PRIMARY_MODEL: (1, 2), BACKUP_MODEL: (5, 10)}
COOLDOWN = 4.0  # long enough that a slow machine makes its skipped calls within it


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    procs, urls = [], {}
    try:
        for name in ("flaky", "backup", "dying"):
            proc, port = start_process([str(FAKES / "openai_upstream.py"), "--port", "0"])
            procs.append(proc)
            urls[name] = f"http://127.0.0.1:{port.strip()}/v1"
        yield urls
    finally:
        for proc in procs:
            stop_process(proc)


def _provider(url: str, **extra: Any) -> dict[str, Any]:
    # No retries and a short first-token timeout: each failure costs one quick attempt.
    base = {
        "type": "openai",
        "base_url": url,
        "api_key": "sk-upstream-test-0000",
        "max_retries": 0,
        "first_token_timeout_seconds": 1.0,
        "connect_timeout_seconds": 2,
        "circuit_breaker": {"failures": 0},  # off: these tests count every attempt
    }
    return {**base, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, str]) -> Iterator[Server]:
    overrides = {
        "providers": {
            "flaky": _provider(upstreams["flaky"]),
            "closed": _provider(f"http://127.0.0.1:{free_port()}/v1"),
            "backup": _provider(upstreams["backup"], models=[BACKUP_MODEL]),
            "dying": _provider(
                upstreams["dying"],
                circuit_breaker={"failures": 2, "cooldown_seconds": COOLDOWN},
            ),
        },
        "pricing": {
            model: {"input": rates[0], "output": rates[1]} for model, rates in PRICES.items()
        },
    }
    folder = tmp_path_factory.mktemp("fallbacks")
    with running_server(folder, None, overrides) as srv:
        srv.add_user(OWNER)
        yield srv


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.create_key(OWNER)


def _agent(server: Server, provider: str) -> str:
    fallback = f"backup:{BACKUP_MODEL}"
    return server.create_agent(OWNER, provider, PRIMARY_MODEL, "--fallback", fallback)


@pytest.fixture(scope="module")
def agents(server: Server) -> dict[str, str]:
    return {name: _agent(server, name) for name in ("flaky", "closed", "dying")}


@pytest.fixture(scope="module")
def client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=key, max_retries=0, timeout=30)


@pytest.fixture
def fault(upstreams: dict[str, str]) -> Iterator[Any]:
    """Sets a fake's fault; every fake is healthy again after the test."""

    def set_fault(name: str, **fault: Any) -> None:
        url = upstreams[name].removesuffix("/v1") + "/_fault"
        httpx.put(url, json=fault, timeout=10).raise_for_status()

    yield set_fault
    for name in upstreams:
        set_fault(name)


# --- reading what the server recorded --------------------------------------------------


def _rows(server: Server, request_id: str) -> list[dict[str, Any]]:
    path = Path(server.folder) / "agenthost.db"
    deadline = time.monotonic() + 5
    while True:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT * FROM transactions WHERE request_id = ? AND kind = 'usage'",
                (request_id,),
            ).fetchall()
        if rows or time.monotonic() > deadline:
            return [dict(r) for r in rows]
        time.sleep(0.05)


def _assert_priced_at(row: dict[str, Any], provider: str, model: str) -> None:
    assert (row["provider"], row["model"]) == (provider, model)
    rates = json.loads(row["rates"])
    assert (rates["input"], rates["output"]) == tuple(r * 1_000_000 for r in PRICES[model])
    per_in, per_out = PRICES[model]
    assert -row["credits"] == row["input_tokens"] * per_in + row["output_tokens"] * per_out
    assert row["output_tokens"] > 0


def _calls(upstreams: dict[str, str], name: str, word: str) -> list[dict[str, Any]]:
    return upstream_records(upstreams[name], word)


def _ask(
    client: openai.OpenAI, agent: str, mode: str, prompt: str
) -> tuple[str, str, str, str | None]:
    """(text, request id, x-agenthost-served-by, the response's `model`) of one call."""
    if mode == "chat-json":
        raw = client.chat.completions.with_raw_response.create(
            model=agent, messages=[{"role": "user", "content": prompt}]
        )
        completion = raw.parse()
        return (
            completion.choices[0].message.content or "",
            completion.id,
            raw.headers["x-agenthost-served-by"],
            completion.model,
        )
    if mode == "chat-sse":
        with client.chat.completions.with_streaming_response.create(
            model=agent, messages=[{"role": "user", "content": prompt}], stream=True
        ) as reply:
            served = reply.headers["x-agenthost-served-by"]
            chunks = list(reply.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[0].id, served, chunks[0].model
    if mode == "responses-json":
        raw_response = client.responses.with_raw_response.create(model=agent, input=prompt)
        body = raw_response.http_response.json()
        assert body["agenthost"]["served_by"] == raw_response.headers["x-agenthost-served-by"]
        response = raw_response.parse()
        return response.output_text, response.id, body["agenthost"]["served_by"], response.model
    with client.responses.with_streaming_response.create(
        model=agent, input=prompt, stream=True
    ) as stream_reply:
        served = stream_reply.headers["x-agenthost-served-by"]
        events = list(stream_reply.parse())
    done = events[-1]
    assert done.type == "response.completed"
    stored = client.responses.with_raw_response.retrieve(done.response.id).http_response.json()
    assert stored["agenthost"]["served_by"] == served
    return done.response.output_text, done.response.id, served, done.response.model


MODES = ["chat-json", "chat-sse", "responses-json", "responses-sse"]
FAULTS = {
    "refused": ("closed", {}),
    "http-503": ("flaky", {"status": 503}),
    "http-429": ("flaky", {"status": 429}),
    # The server's own key refused: the operator's fault, so another provider serves.
    "http-401": ("flaky", {"status": 401}),
    "timeout": ("flaky", {"slow_ms": 3000}),
}


# --- fallbacks -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(FAULTS))
def test_primary_failing_before_first_token_is_served_by_the_fallback(
    server: Server,
    client: openai.OpenAI,
    agents: dict[str, str],
    upstreams: dict[str, str],
    fault: Any,
    kind: str,
    mode: str,
) -> None:
    primary, how = FAULTS[kind]
    if how:
        fault(primary, **how)
    word = marker()
    text, request_id, served, model = _ask(client, agents[primary], mode, f"{word}\n!text hi there")
    assert text == "hi there"
    assert served == f"backup:{BACKUP_MODEL}"
    assert model == agents[primary]  # the agent's id, never the upstream's model
    if primary == "flaky":
        assert len(_calls(upstreams, "flaky", word)) == 1  # tried once (no retries configured)
    backup_calls = _calls(upstreams, "backup", word)
    assert [c["body"]["model"] for c in backup_calls] == [BACKUP_MODEL]
    [row] = _rows(server, request_id)
    _assert_priced_at(row, "backup", BACKUP_MODEL)


@pytest.mark.parametrize("mode", MODES)
def test_healthy_primary_serves_and_says_so(
    server: Server,
    client: openai.OpenAI,
    agents: dict[str, str],
    upstreams: dict[str, str],
    mode: str,
) -> None:
    word = marker()
    text, request_id, served, _ = _ask(client, agents["flaky"], mode, f"{word}\n!text all good")
    assert (text, served) == ("all good", f"flaky:{PRIMARY_MODEL}")
    assert _calls(upstreams, "backup", word) == []
    [row] = _rows(server, request_id)
    _assert_priced_at(row, "flaky", PRIMARY_MODEL)


@pytest.mark.parametrize("interface", ["chat", "responses"])
def test_no_fallback_after_the_first_token(
    server: Server,
    client: openai.OpenAI,
    agents: dict[str, str],
    upstreams: dict[str, str],
    interface: str,
) -> None:
    word = marker()
    prompt = f"{word}\n!text one two three four five six\n!cut"
    if interface == "chat":
        with client.chat.completions.with_streaming_response.create(
            model=agents["flaky"], messages=[{"role": "user", "content": prompt}], stream=True
        ) as reply:
            assert reply.headers["x-agenthost-served-by"] == f"flaky:{PRIMARY_MODEL}"
            with pytest.raises(openai.APIError):
                list(reply.parse())  # the in-stream error, as without fallbacks
    else:
        with client.responses.with_streaming_response.create(
            model=agents["flaky"], input=prompt, stream=True
        ) as stream_reply:
            assert stream_reply.headers["x-agenthost-served-by"] == f"flaky:{PRIMARY_MODEL}"
            with pytest.raises(openai.APIError):
                list(stream_reply.parse())  # the stream's error event
    assert _calls(upstreams, "backup", word) == []


def test_a_bad_request_does_not_fall_back(
    client: openai.OpenAI, agents: dict[str, str], upstreams: dict[str, str]
) -> None:
    word = marker()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=agents["flaky"], messages=[{"role": "user", "content": f"{word}\n!http 400"}]
        )
    assert caught.value.status_code == 502
    assert _calls(upstreams, "backup", word) == []


def test_every_route_failing_is_the_last_ones_error(
    client: openai.OpenAI, agents: dict[str, str], upstreams: dict[str, str], fault: Any
) -> None:
    fault("flaky", status=503)
    fault("backup", status=503)
    word = marker()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=agents["flaky"], messages=[{"role": "user", "content": word}]
        )
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable"  # type: ignore[index]
    assert len(_calls(upstreams, "flaky", word)) == len(_calls(upstreams, "backup", word)) == 1


def test_a_background_response_stores_who_served_it(
    client: openai.OpenAI, agents: dict[str, str], fault: Any
) -> None:
    fault("flaky", status=503)
    queued = client.responses.create(
        model=agents["flaky"], input=f"{marker()}\n!text later", background=True
    )
    deadline = time.monotonic() + 20
    while True:
        stored = client.responses.with_raw_response.retrieve(queued.id).http_response.json()
        if stored["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored["status"] == "completed", stored["status"]
    assert stored["agenthost"]["served_by"] == f"backup:{BACKUP_MODEL}"
    assert stored["model"] == agents["flaky"]


# --- the circuit breaker ---------------------------------------------------------------


def _chat(client: openai.OpenAI, agent: str, word: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=agent, messages=[{"role": "user", "content": word}]
    )
    return raw.headers["x-agenthost-served-by"]


def test_breaker_skips_a_dead_provider_then_recovers_after_the_cool_down(
    server: Server,
    client: openai.OpenAI,
    agents: dict[str, str],
    upstreams: dict[str, str],
    fault: Any,
) -> None:
    agent, backup = agents["dying"], f"backup:{BACKUP_MODEL}"
    fault("dying", status=503)
    failing = marker()
    assert [_chat(client, agent, failing) for _ in range(2)] == [backup, backup]
    assert len(_calls(upstreams, "dying", failing)) == 2  # two failures open it
    skipped = marker()
    assert [_chat(client, agent, skipped) for _ in range(3)] == [backup] * 3
    assert _calls(upstreams, "dying", skipped) == []  # open: not contacted at all
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'agenthost_circuit_state{provider="dying"} 2.0' in metrics
    assert 'agenthost_fallbacks_total{from_provider="dying",to_provider="backup"}' in metrics

    fault("dying")  # back up; the breaker only learns it from a trial call
    time.sleep(COOLDOWN + 0.2)
    trial = marker()
    assert _chat(client, agent, trial) == f"dying:{PRIMARY_MODEL}"
    assert len(_calls(upstreams, "dying", trial)) == 1
    assert _calls(upstreams, "backup", trial) == []
    after = marker()
    assert _chat(client, agent, after) == f"dying:{PRIMARY_MODEL}"  # closed again
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'agenthost_circuit_state{provider="dying"} 0.0' in metrics


def test_failed_trial_opens_the_breaker_for_another_cool_down(
    client: openai.OpenAI, agents: dict[str, str], upstreams: dict[str, str], fault: Any
) -> None:
    agent = agents["dying"]
    fault("dying", status=503)
    opening = marker()
    for _ in range(2):
        _chat(client, agent, opening)
    time.sleep(COOLDOWN + 0.2)
    trial = marker()
    assert _chat(client, agent, trial) == f"backup:{BACKUP_MODEL}"
    assert len(_calls(upstreams, "dying", trial)) == 1  # the one trial, failed
    again = marker()
    _chat(client, agent, again)
    assert _calls(upstreams, "dying", again) == []  # open again
    fault("dying")
    time.sleep(COOLDOWN + 0.2)
    assert _chat(client, agent, marker()) == f"dying:{PRIMARY_MODEL}"


# --- money under concurrency -----------------------------------------------------------


def _balance_and_usage(server: Server) -> tuple[int, int, int]:
    path = Path(server.folder) / "agenthost.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        (user_id,) = conn.execute("SELECT id FROM users WHERE email = ?", (OWNER,)).fetchone()
        (balance,) = conn.execute(
            "SELECT credits FROM balances WHERE user_id = ?", (user_id,)
        ).fetchone()
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(credits), 0) FROM transactions WHERE user_id = ?", (user_id,)
        ).fetchone()
        (rows,) = conn.execute(
            "SELECT COUNT(*) FROM transactions WHERE user_id = ? AND kind = 'usage'", (user_id,)
        ).fetchone()
    return balance, total, rows


def test_many_calls_while_the_primary_dies_keep_ledger_equal_to_usage(
    server: Server,
    client: openai.OpenAI,
    agents: dict[str, str],
    upstreams: dict[str, str],
    fault: Any,
) -> None:
    balance, total, rows = _balance_and_usage(server)
    word = marker()

    def one(index: int) -> tuple[str, int, int]:
        completion = client.chat.completions.with_raw_response.create(
            model=agents["flaky"], messages=[{"role": "user", "content": f"{word} {index}"}]
        )
        parsed = completion.parse()
        assert parsed.usage is not None
        served = completion.headers["x-agenthost-served-by"]
        return served, parsed.usage.prompt_tokens, parsed.usage.completion_tokens

    with ThreadPoolExecutor(12) as pool:
        first = [pool.submit(one, i) for i in range(12)]
        fault("flaky", status=503)  # dies while the first calls run
        rest = [pool.submit(one, i) for i in range(12, 30)]
        results = [f.result() for f in first + rest]
    servers = {served for served, _, _ in results}
    assert f"backup:{BACKUP_MODEL}" in servers
    assert all(served in (f"backup:{BACKUP_MODEL}", f"flaky:{PRIMARY_MODEL}") for served in servers)
    deadline = time.monotonic() + 10
    while (now := _balance_and_usage(server))[2] < rows + 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    new_balance, new_total, new_rows = now
    assert new_rows == rows + 30  # one row per call, each priced once
    assert new_balance - balance == new_total - total  # ledger == balance change
    expected = 0
    for served, prompt_tokens, completion_tokens in results:
        per_in, per_out = PRICES[served.split(":", 1)[1]]
        expected += prompt_tokens * per_in + completion_tokens * per_out
    assert total - new_total == expected  # what callers were told they used, at its price
