"""Refused requests give their memory back at once (issue: each refused 3 MB request
once stayed in memory until the cyclic collector ran, 168 → 2,521 MiB after 400).

A real server process gets a hundred near-limit bodies of each refusal kind, through
both interfaces; its resident memory may not grow by more than a small bound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.server import Server, running_server

PER_KIND = 60
BIG = "x" * 2_900_000  # under the 3 MiB body limit with its JSON around it
GROWTH_BOUND_MIB = 80  # one leaked body per request would be ~340 MiB per kind


@dataclass
class Refusals:
    server: Server
    agent: str
    key: str
    broke_agent: str
    broke_key: str


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusals]:
    # A user who may call, and one whose balance is nothing.
    with running_server(tmp_path_factory.mktemp("refused")) as server:
        for email in ("ok@example.com", "broke@example.com"):
            server.add_user(email)
        start = server.cli("balance", "show", "broke@example.com").stdout
        server.cli(
            "balance", "add", "broke@example.com", "--", "-" + start.split(": ")[1].split()[0]
        )
        yield Refusals(
            server,
            server.create_agent("ok@example.com", "scripted", "m"),
            server.create_key("ok@example.com"),
            server.create_agent("broke@example.com", "scripted", "m"),
            server.create_key("broke@example.com"),
        )


def rss_mib(server: Server) -> float:
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(True)]) / 2**20


def chat(model: str, text: str = BIG) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def responses(model: str, text: str = BIG) -> dict[str, object]:
    return {"model": model, "input": text}


def kinds(r: Refusals) -> dict[str, tuple[int, str, str, dict[str, object]]]:
    """(status, path, key, body) per refusal kind."""
    return {
        "401 chat": (401, "/chat/completions", "sk-" + "0" * 64, chat(r.agent)),
        "404 chat": (404, "/chat/completions", r.key, chat("agent_unknown")),
        "400 chat": (400, "/chat/completions", r.key, {**chat(r.agent), "temperature": "hot"}),
        "413 chat": (413, "/chat/completions", r.key, chat(r.agent, BIG + "y" * 400_000)),
        "402 chat": (402, "/chat/completions", r.broke_key, chat(r.broke_agent)),
        "402 responses": (402, "/responses", r.broke_key, responses(r.broke_agent)),
        "404 responses": (404, "/responses", r.key, responses("agent_unknown")),
        "400 responses": (400, "/responses", r.key, {**responses(r.agent), "top_p": "x"}),
    }


def test_refused_requests_do_not_keep_their_bodies(refusals: Refusals) -> None:
    server = refusals.server
    with httpx.Client(timeout=60) as client:
        warm = client.post(
            f"{server.api}/chat/completions",
            json=chat(refusals.agent, "hi"),
            headers={"Authorization": f"Bearer {refusals.key}"},
        )
        assert warm.status_code == 200
        grew = {}
        for name, (status, path, key, body) in kinds(refusals).items():
            before = rss_mib(server)
            for _ in range(PER_KIND):
                reply = client.post(
                    server.api + path, json=body, headers={"Authorization": f"Bearer {key}"}
                )
                assert reply.status_code == status, (name, reply.text[:300])
            grew[name] = round(rss_mib(server) - before, 1)
    print("RSS growth per kind (MiB):", grew)
    assert all(growth < GROWTH_BOUND_MIB for growth in grew.values()), grew


def test_rate_limited_requests_do_not_keep_their_bodies(tmp_path: Path) -> None:
    overrides = {"limits": {"per_user": {"requests_per_minute": 1}}}
    with running_server(tmp_path / "limited", None, overrides) as server:
        server.add_user("rl@example.com")
        agent = server.create_agent("rl@example.com", "scripted", "m")
        key = server.create_key("rl@example.com")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=60) as client:
            client.post(f"{server.api}/chat/completions", json=chat(agent, "hi"), headers=headers)
            started, admitted = time.monotonic(), 0
            before = rss_mib(server)
            for path, body in (
                ("/chat/completions", chat(agent)),
                ("/responses", responses(agent)),
            ):
                for _ in range(PER_KIND):
                    reply = client.post(server.api + path, json=body, headers=headers)
                    assert reply.status_code in (200, 429)
                    admitted += reply.status_code == 200
            grew = rss_mib(server) - before
            # The limit's minute may roll over on a slow machine: one more call per minute.
            assert admitted <= (time.monotonic() - started) // 60 + 1, admitted
    print(f"RSS growth after {2 * PER_KIND} rate-limited requests: {grew:.1f} MiB")
    assert grew < GROWTH_BOUND_MIB
