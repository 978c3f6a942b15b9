"""Upstream faults, through both interfaces, streamed and not.

For each fault: the caller gets the DESIGN.md error (before the first token) or the
protocol's error signal (after it); nothing hangs past its deadline; the upstream is
retried only before any token reached the caller; the ledger holds exactly one
transaction per model call that produced output, for what it produced.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from tests.conftest import Tenant
from tests.reliability.conftest import FIRST_TOKEN_TIMEOUT, RETRIES
from tests.reliability.modes import MODES, Outcome, call
from tests.reliability.support import (
    Ledger,
    assert_consistent,
    ledger,
    marker,
    settled_ledger,
    upstream_attempts,
    upstream_records,
    wait_outcomes,
)
from tests.support.server import UPSTREAM_KEY, Server

ALL_ATTEMPTS = 1 + RETRIES
# A first-token timeout per attempt plus the backoff between them (0.25 s, 0.5 s, ±20 %).
TIMEOUT_BOUND = ALL_ATTEMPTS * FIRST_TOKEN_TIMEOUT + 0.9 + 2.0


@dataclass(frozen=True)
class Before:
    """A fault that ends the call before the first token: a plain HTTP error."""

    directive: str
    status: int
    code: str
    attempts: int
    outcome: str  # how the server's `agenthost_upstream_attempts` counts each attempt
    within: float = 5.0


BEFORE_FIRST_TOKEN = {
    "http_500": Before("!http 500", 503, "upstream_unavailable", ALL_ATTEMPTS, "unavailable"),
    "http_503": Before("!http 503", 503, "upstream_unavailable", ALL_ATTEMPTS, "unavailable"),
    "http_429": Before("!http 429", 503, "upstream_unavailable", ALL_ATTEMPTS, "unavailable"),
    "http_400": Before("!http 400", 502, "upstream_error", 1, "failed"),
    "http_401": Before("!http 401", 502, "upstream_error", 1, "failed"),
    "garbage": Before("!garbage", 502, "upstream_error", 1, "failed"),
}
SLOW = Before("!slow 1600", 504, "upstream_timeout", ALL_ATTEMPTS, "timeout", TIMEOUT_BOUND)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(BEFORE_FIRST_TOKEN))
def test_fault_before_first_token_is_an_http_error_and_charges_nothing(
    rserver: Server, carol: Tenant, own_upstream: str, fault: str, mode: str
) -> None:
    _check_before_first_token(rserver, carol, own_upstream, BEFORE_FIRST_TOKEN[fault], mode)


@pytest.mark.parametrize("mode", ["chat-sse", "responses-json"])
def test_first_token_timeout_is_504_after_bounded_retries(
    rserver: Server, carol: Tenant, own_upstream: str, mode: str
) -> None:
    _check_before_first_token(rserver, carol, own_upstream, SLOW, mode)


def _check_before_first_token(
    rserver: Server, carol: Tenant, own_upstream: str, case: Before, mode: str
) -> None:
    word = marker()
    before = ledger(rserver, carol.email)
    attempts_before = upstream_attempts(rserver, "fake", case.outcome)
    out = call(rserver.api, carol.key, mode, carol.fake_agent, f"{word}\n{case.directive}")
    assert out.status == case.status, out
    assert out.http_error is not None and out.http_error["code"] == case.code
    assert out.http_error["type"] == "upstream_error"
    assert UPSTREAM_KEY not in out.http_error["message"]
    assert out.seconds < case.within, f"took {out.seconds:.2f}s"
    # The server counts its own attempts. The fake's log can hold fewer: on a loaded machine
    # an attempt may time out before the fake has read its body, and then it never logs it.
    assert upstream_attempts(rserver, "fake", case.outcome) - attempts_before == case.attempts
    records = wait_outcomes(own_upstream, word, {"done", "cut", "disconnected"} | _http_outcomes())
    assert 1 <= len(records) <= case.attempts, [r["outcome"] for r in records]
    after = ledger(rserver, carol.email)
    assert after.since(before) == []
    assert after.balance == before.balance


def _http_outcomes() -> set[str]:
    return {f"http_{s}" for s in (400, 401, 429, 500, 503)}


@pytest.mark.parametrize("mode", ["chat-json", "responses-sse"])
def test_connection_refused_is_503_after_bounded_retries(
    rserver: Server, carol: Tenant, closed_agent: str, mode: str
) -> None:
    before = ledger(rserver, carol.email)
    out = call(rserver.api, carol.key, mode, closed_agent, "hello")
    assert out.status == 503 and out.http_error is not None
    assert out.http_error["code"] == "upstream_unavailable"
    assert "sk-closed-port-secret" not in out.http_error["message"]
    # Two backoffs (0.25 s and 0.5 s, ±20 %) separate the three refused connects.
    assert 0.55 < out.seconds < 3.0, out.seconds
    assert ledger(rserver, carol.email).since(before) == []


@dataclass(frozen=True)
class Midway:
    """A fault after the first token: the stream's error signal, one charged call."""

    directive: str
    code: str
    json_status: int
    text: str  # what reached the caller before the fault
    output_tokens: int  # charged by the documented 4-characters-per-token estimate


MID_STREAM = {
    "cut": Midway("!cut", "upstream_error", 502, "Hello from", 3),
    "error_event": Midway("!error", "upstream_error", 502, "Hello from", 3),
    "stall_after_first_token": Midway("!stall 3000", "upstream_timeout", 504, "Hello", 2),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(MID_STREAM))
def test_fault_mid_stream_signals_the_error_and_charges_what_was_generated_once(
    rserver: Server, carol: Tenant, own_upstream: str, fault: str, mode: str
) -> None:
    case = MID_STREAM[fault]
    word = marker()
    before = ledger(rserver, carol.email)
    out = call(rserver.api, carol.key, mode, carol.fake_agent, f"{word}\n{case.directive}")
    assert out.seconds < FIRST_TOKEN_TIMEOUT + 4.0, out.seconds
    if mode.endswith("json"):
        assert out.status == case.json_status and out.http_error is not None
        assert out.http_error["code"] == case.code
    else:
        _assert_stream_error(out, mode, case)
    records = wait_outcomes(own_upstream, word, {"done", "cut", "disconnected"})
    assert len(records) == 1, "a partial answer is never replayed"
    after = settled_ledger(rserver, carol.email, before, 1)
    _assert_one_charge(before, after, case.output_tokens)


def _assert_stream_error(out: Outcome, mode: str, case: Midway) -> None:
    assert out.status == 200
    assert out.text == case.text
    assert out.stream_error is not None and out.stream_error["code"] == case.code
    assert out.ended_properly, "never a silent close"
    if mode.startswith("responses"):
        assert out.events[-2:] == ["error", "response.failed"]
        assert out.final_status == "failed"


def _assert_one_charge(before: Ledger, after: Ledger, output_tokens: int) -> None:
    rows = after.since(before)
    assert len(rows) == 1, rows
    _, input_tokens, output, credits = rows[0]
    assert output == output_tokens
    assert input_tokens > 0, "the prompt was read: its local estimate is charged"
    assert credits < 0
    assert_consistent(before, after)


@pytest.mark.parametrize("mode", MODES)
def test_missing_usage_is_charged_by_estimate_once(
    rserver: Server, carol: Tenant, mode: str
) -> None:
    before = ledger(rserver, carol.email)
    out = call(rserver.api, carol.key, mode, carol.fake_agent, f"{marker()}\n!nousage")
    assert out.status == 200 and out.error is None
    assert out.text == "Hello from fake upstream"
    after = settled_ledger(rserver, carol.email, before, 1)
    _assert_one_charge(before, after, output_tokens=6)  # 24 characters / 4


@pytest.mark.parametrize("mode", MODES)
def test_healthy_call_is_charged_exactly_its_reported_usage(
    rserver: Server, carol: Tenant, mode: str
) -> None:
    before = ledger(rserver, carol.email)
    out = call(rserver.api, carol.key, mode, carol.fake_agent, "one two three")
    assert out.status == 200 and out.error is None and out.ended_properly
    after = settled_ledger(rserver, carol.email, before, 1)
    rows = after.since(before)
    assert len(rows) == 1
    _, input_tokens, output_tokens, credits = rows[0]
    # The fake upstream counts words: 3 prompt words, 4 reply words; gpt-4o-mini rates.
    assert (input_tokens, output_tokens) == (3, 4)
    assert credits == -(3 * 150_000 + 4 * 600_000) // 1_000_000  # rounded up: -3
    assert_consistent(before, after)


def test_retry_waits_back_off_between_attempts(
    rserver: Server, carol: Tenant, own_upstream: str
) -> None:
    word = marker()
    call(rserver.api, carol.key, "chat-json", carol.fake_agent, f"{word}\n!http 503")
    records = sorted(upstream_records(own_upstream, word), key=lambda r: r["received_at"])
    gaps = [b["received_at"] - a["received_at"] for a, b in itertools.pairwise(records)]
    assert len(gaps) == RETRIES
    assert 0.18 < gaps[0] < 0.6 and 0.38 < gaps[1] < 1.0, gaps
    assert gaps[1] > gaps[0], "the backoff grows"
