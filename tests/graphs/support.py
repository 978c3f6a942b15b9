"""Helpers for agent-graph tests: named agents, the ledger of one request, the fake's log."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from tests.support.server import Server


def agent(server: Server, owner: str, name: str, *extra: str, provider: str = "fake") -> str:
    return server.cli(
        "agents", "create", "--owner", owner, "--name", name, "--provider", provider,
        "--model", "gpt-4o-mini", *extra,
    ).stdout.strip()  # fmt: skip


def ledger(server: Server, request_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT agent_id, model, input_tokens, output_tokens, credits FROM transactions "
            "WHERE request_id = ? ORDER BY id",
            (request_id,),
        ).fetchall()
    return [dict(row) for row in rows]


def upstream_log(upstream_url: str, marker: str) -> list[dict[str, Any]]:
    """The fake upstream's requests whose messages mention `marker`."""
    base = upstream_url.removesuffix("/v1")
    found: list[dict[str, Any]] = httpx.get(f"{base}/_requests", timeout=10).json()
    return [r for r in found if marker in str(r["body"].get("messages"))]
