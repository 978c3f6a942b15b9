"""`background: true` with `stream: true`: the events are kept, a client that leaves does
not stop the run, and `GET /responses/{id}?stream=true&starting_after=N` resumes the
stream on any server process sharing the database, with continuous sequence numbers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.responses.conftest import Api
from tests.responses.schema import EventOrder, check_response
from tests.support.server import Server, free_port, running_server

PACED = {"providers": {"paced": {"type": "scripted", "script": {"itl_ms": 40}}}}


@dataclass
class Pair:
    """Two server processes on one database: a run on `a`, its resume on `b`."""

    a: Api
    b: Api
    db_path: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp("background-stream")
    with running_server(folder, upstream_url, PACED) as first:
        email = "dora@example.com"
        first.add_user(email)
        agent = first.create_agent(email, "paced", "m")
        tenant = Tenant(email, first.create_key(email), agent, "")
        second = Server(folder=folder, config_path=first.config_path, port=free_port())
        second.log_path = folder / "second.log"
        second.start()
        try:
            yield Pair(
                Api(first, tenant, upstream_url),
                Api(second, tenant, upstream_url),
                str(folder / "agenthost.db"),
            )
        finally:
            second.stop()


def _events(stream: Any) -> list[dict[str, Any]]:
    return [event.model_dump(mode="json", exclude_unset=True) for event in stream]


def _checked(events: list[dict[str, Any]]) -> EventOrder:
    order = EventOrder()
    for event in events:
        order.feed(event)
    order.finish()
    return order


def _raw_events(api: Api, response_id: str, **params: Any) -> list[dict[str, Any]]:
    """GET ?stream=true read as raw SSE, ending in `[DONE]`."""
    with httpx.stream(
        "GET",
        f"{api.url}/{response_id}",
        params={"stream": "true", **params},
        headers=api.headers,
        timeout=30,
    ) as reply:
        assert reply.status_code == 200, reply.read().decode()
        raw = b"".join(reply.iter_bytes()).decode()
    frames = raw.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""], frames[-3:]
    return [httpx.Response(200, content=f.split("\n")[1][6:]).json() for f in frames[:-2]]


def test_a_client_that_leaves_resumes_on_another_process(pair: Pair) -> None:
    agent = pair.a.tenant.scripted_agent
    stream = pair.a.sdk().responses.create(
        model=agent, input="!tokens 40", background=True, stream=True
    )
    seen: list[dict[str, Any]] = []
    for event in stream:
        seen.append(event.model_dump(mode="json", exclude_unset=True))
        if len(seen) == 6:
            break
    stream.close()  # the client leaves mid-run
    response_id = seen[0]["response"]["id"]
    assert seen[0]["type"] == "response.created"
    assert seen[0]["response"]["status"] == "queued" and seen[0]["response"]["background"]
    last = seen[-1]["sequence_number"]
    with pair.b.sdk().responses.retrieve(response_id, stream=True, starting_after=last) as rest:
        resumed = _events(rest)
    assert resumed[0]["sequence_number"] == last + 1
    order = _checked(seen + resumed)  # one spec-valid stream, numbered 0, 1, 2, ...
    final = order.finish()
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == " ".join(["tok"] * 40)
    stored = pair.b.get(f"/{response_id}").json()
    check_response(stored)
    assert stored["status"] == "completed"
    # After the end, a replay from the start (either process) is the same stream.
    assert _raw_events(pair.a, response_id) == seen + resumed
    assert _raw_events(pair.b, response_id, starting_after=last) == resumed


def test_the_creating_stream_and_a_follower_see_the_same_events(pair: Pair) -> None:
    agent = pair.a.tenant.scripted_agent
    with pair.a.sdk().responses.create(
        model=agent, input="!tokens 10", background=True, stream=True
    ) as stream:
        first = next(iter(stream)).model_dump(mode="json", exclude_unset=True)
        response_id = first["response"]["id"]
        follower = _raw_events(pair.b, response_id)  # follows the live run to its end
        rest = _events(stream)
    assert follower == [first, *rest]
    assert _checked(follower).finish()["status"] == "completed"


def test_cancel_ends_the_followers_stream(pair: Pair) -> None:
    agent = pair.a.tenant.scripted_agent
    stream = pair.a.sdk().responses.create(
        model=agent, input="!tokens 400", background=True, stream=True
    )
    with stream:
        first = next(iter(stream)).model_dump(mode="json", exclude_unset=True)
        response_id = first["response"]["id"]
        time.sleep(0.3)
        cancelled = pair.b.post({}, f"/{response_id}/cancel")  # another process
        assert cancelled.status_code == 200, cancelled.text
        rest = _events(stream)
    assert rest[-1]["type"] == "response.incomplete"
    assert rest[-1]["response"]["status"] == "cancelled"
    events = [first, *rest]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert pair.a.get(f"/{response_id}").json()["status"] == "cancelled"
    # A follower arriving after the end gets the same ending.
    assert _raw_events(pair.b, response_id)[-1] == rest[-1]


def test_a_failure_before_the_first_token_is_in_the_stream(pair: Pair) -> None:
    body = {"model": pair.a.tenant.scripted_agent, "input": "!fail before", "stream": True}
    with httpx.stream(
        "POST", pair.a.url, json={**body, "background": True}, headers=pair.a.headers, timeout=30
    ) as reply:
        assert reply.status_code == 200
        raw = b"".join(reply.iter_bytes()).decode()
    frames = [f for f in raw.split("\n\n") if f.startswith("event: ")]
    types = [f.split("\n")[0][7:] for f in frames]
    assert types == ["response.created", "error", "response.failed"]


def test_a_stream_resumes_only_for_its_owner_and_only_when_kept(
    pair: Pair, upstream_url: str
) -> None:
    agent = pair.a.tenant.scripted_agent
    with pair.a.sdk().responses.create(
        model=agent, input="hi", background=True, stream=True
    ) as stream:
        response_id = _events(stream)[0]["response"]["id"]
    eve_email = "eve@example.com"
    pair.a.server.add_user(eve_email)
    eve = Api(pair.a.server, Tenant(eve_email, pair.a.server.create_key(eve_email), "", ""), "")
    reply = eve.get(f"/{response_id}", stream="true")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "response_not_found"
    plain = pair.a.create({"model": agent, "input": "not streamed", "background": True})
    for response in (plain, pair.a.create({"model": agent, "input": "foreground"})):
        reply = pair.a.get(f"/{response['id']}", stream="true")
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "stream_not_available"
    reply = pair.a.get(f"/{response_id}", stream="true", starting_after=-1)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "starting_after"


def test_a_deleted_response_takes_its_events(pair: Pair) -> None:
    agent = pair.a.tenant.scripted_agent
    with pair.a.sdk().responses.create(
        model=agent, input="hi", background=True, stream=True
    ) as stream:
        response_id = _events(stream)[0]["response"]["id"]

    def kept() -> int:
        with sqlite3.connect(pair.db_path) as connection:
            query = "SELECT count(*) FROM response_events WHERE response_id = ?"
            count: int = connection.execute(query, (response_id,)).fetchone()[0]
        return count

    assert kept() >= 1
    assert pair.a.sdk().responses.delete(response_id) is None
    assert kept() == 0
