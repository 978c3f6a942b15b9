"""Helpers for the reliability tests: the ledger read straight from SQLite, the fake
upstream's request log filtered by a per-test marker, the server's own metrics, and process
resource sampling."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import Server

API_ERROR_KEYS = {"message", "type", "param", "code"}


def marker() -> str:
    """A unique word put in a prompt so the upstream's log can be filtered by test."""
    return "m" + uuid.uuid4().hex[:12]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error_shape(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The DESIGN.md error body; returns its inner `error` object."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == API_ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


# --- the ledger -----------------------------------------------------------------------


@contextmanager
def ledger_db(server: Server) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the server's SQLite file."""
    path = Path(server.folder) / "agenthost.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    with closing(conn):
        yield conn


@dataclass(frozen=True)
class Ledger:
    """One user's ledger at a moment: usage transactions and the balance."""

    usage_rows: list[tuple[str, int, int, int]]  # (request_id, input, output, credits)
    balance: int
    credits_sum: int

    def since(self, before: Ledger) -> list[tuple[str, int, int, int]]:
        return self.usage_rows[len(before.usage_rows) :]


def ledger(server: Server, email: str) -> Ledger:
    with ledger_db(server) as conn:
        (user_id,) = conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        rows = conn.execute(
            "SELECT request_id, input_tokens, output_tokens, credits FROM transactions "
            "WHERE user_id = ? AND kind = 'usage' ORDER BY id",
            (user_id,),
        ).fetchall()
        found = conn.execute(
            "SELECT credits FROM balances WHERE user_id = ?", (user_id,)
        ).fetchone()
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(credits), 0) FROM transactions WHERE user_id = ?", (user_id,)
        ).fetchone()
    return Ledger([tuple(r) for r in rows], found[0] if found else 0, total)


def settled_ledger(server: Server, email: str, before: Ledger, count: int) -> Ledger:
    """Waits (briefly) until `count` new usage rows exist: settlement of a dropped
    client runs just after the connection closes."""
    deadline = time.monotonic() + 5
    while True:
        now = ledger(server, email)
        if len(now.since(before)) >= count or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def assert_consistent(before: Ledger, after: Ledger) -> None:
    """The balance moved by exactly the sum of the new transactions."""
    assert after.balance - before.balance == after.credits_sum - before.credits_sum


# --- the fake upstream ----------------------------------------------------------------


def upstream_records(upstream_url: str, word: str) -> list[dict[str, Any]]:
    records = httpx.get(upstream_url.removesuffix("/v1") + "/_requests", timeout=10).json()
    return [r for r in records if word in orjson.dumps(r.get("body", {})).decode()]


def upstream_attempts(server: Server, provider: str, outcome: str) -> float:
    """The server's own count of upstream attempts that ended with `outcome`."""
    reply = httpx.get(f"{server.url}/metrics", timeout=10)
    reply.raise_for_status()
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "agenthost_upstream_attempts_total"
                and labels.get("provider") == provider
                and labels.get("outcome") == outcome
            ):
                return sample.value
    return 0.0


def wait_outcomes(
    upstream_url: str, word: str, wanted: set[str], timeout: float = 10
) -> list[dict[str, Any]]:
    """The records for `word` once none is pending any more (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        records = upstream_records(upstream_url, word)
        if records and all(r["outcome"] in wanted for r in records):
            return records
        if time.monotonic() > deadline:
            return records
        time.sleep(0.05)


# --- process resources ----------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sse_payloads(lines: Iterator[str]) -> list[Any]:
    out: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out
