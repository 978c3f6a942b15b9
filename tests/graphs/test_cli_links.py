"""`agents create|update --subagents/--handoffs`: saved in order, refused when the owner
cannot call a target, cleared with an empty value, and shown by `agents list`."""

from __future__ import annotations

import secrets
import sqlite3

from tests.support.server import Server


def links_of(server: Server, agent: str) -> list[tuple[str, str]]:
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        rows = db.execute(
            "SELECT kind, target_id FROM agent_links WHERE agent_id = ? ORDER BY kind, position",
            (agent,),
        ).fetchall()
    return [(kind, target) for kind, target in rows]


def listed_row(server: Server, agent: str) -> list[str]:
    """`agents list`'s tab-separated columns for `agent`."""
    rows = [line.split("\t") for line in server.cli("agents", "list").stdout.splitlines()]
    (row,) = [row for row in rows if row[0] == agent]
    return row


def named(server: Server, owner: str, name: str, *extra: str) -> str:
    return server.cli(
        "agents", "create", "--owner", owner, "--name", name, "--provider", "scripted",
        "--model", "m", *extra,
    ).stdout.strip()  # fmt: skip


def test_links_are_saved_checked_and_cleared(server: Server) -> None:
    owner, other = (f"{who}-{secrets.token_hex(3)}@example.com" for who in ("own", "oth"))
    server.add_user(owner)
    server.add_user(other)
    helper = named(server, owner, "Helper", "--description", "Answers questions")
    closer = named(server, owner, "Closer")
    hidden = named(server, other, "Hidden")
    shared = named(server, other, "Shared", "--share-remote", f"user:{owner}")
    parent = named(
        server, owner, "Parent", "--subagents", f"{helper},{shared}", "--handoffs", closer
    )
    assert links_of(server, parent) == [
        ("handoff", closer),
        ("subagent", helper),
        ("subagent", shared),
    ]
    listed = listed_row(server, parent)
    assert listed[2:] == ["scripted/m", "private", "-", f"{helper},{shared}", closer]
    assert listed_row(server, helper)[4:] == ["-", "-", "-"]
    refused = server.cli("agents", "update", parent, "--subagents", hidden, check=False)
    assert refused.returncode != 0 and "--subagents" in refused.stderr
    assert links_of(server, parent)[1:] == [("subagent", helper), ("subagent", shared)]
    refused = server.cli(
        "agents", "create", "--owner", owner, "--name", "X", "--provider", "scripted",
        "--model", "m", "--handoffs", "agent_nope", check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "agent_nope" in refused.stderr
    server.cli("agents", "update", parent, "--subagents", "", "--instructions", "Be brief.")
    assert links_of(server, parent) == [("handoff", closer)]
    server.cli("agents", "update", parent, "--fallback", "scripted:backup")
    assert listed_row(server, parent)[4:] == ["scripted:backup", "-", closer]
