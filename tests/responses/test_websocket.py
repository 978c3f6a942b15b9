"""WebSocket mode on /responses: same events as SSE, local history, errors, time limit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Tenant
from tests.responses.conftest import Api, marker
from tests.responses.schema import EventOrder, check_component
from tests.support.server import Server


def ws_url(server: Server) -> str:
    return server.api.replace("http://", "ws://") + "/responses"


def open_socket(server: Server, key: str) -> ClientConnection:
    return connect(ws_url(server), additional_headers={"Authorization": f"Bearer {key}"})


def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=20))
    return message


def turn(socket: ClientConnection, body: dict[str, Any]) -> EventOrder:
    """Send one response.create and read its events through the state machine."""
    socket.send(json.dumps({"type": "response.create", **body}))
    order = EventOrder()
    while order.terminal is None:
        order.feed(receive(socket))
    return order


def error_of(socket: ClientConnection, body: dict[str, Any]) -> dict[str, Any]:
    socket.send(json.dumps({"type": "response.create", **body}))
    event = receive(socket)
    check_component("WebSocketErrorEvent", event)
    return event


@pytest.fixture
def socket(server: Server, alice: Tenant) -> Iterator[ClientConnection]:
    with open_socket(server, alice.key) as sock:
        yield sock


def test_websocket_turns_use_the_sse_events(socket: ClientConnection, api: Api) -> None:
    order = turn(socket, {"model": api.tenant.scripted_agent, "input": "over ws"})
    final = order.finish()
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "echo: over ws"
    assert api.get(f"/{final['id']}").status_code == 200  # store defaults to true


def test_local_previous_response_id_works_with_store_false(
    socket: ClientConnection, api: Api
) -> None:
    agent, tag = api.tenant.fake_agent, marker()
    first = turn(socket, {"model": agent, "input": "!text local memory", "store": False})
    first_id = first.finish()["id"]
    assert api.get(f"/{first_id}").status_code == 404
    turn(socket, {"model": agent, "input": tag, "store": False, "previous_response_id": first_id})
    sent = api.upstream_request(tag)["messages"]
    assert "local memory" in str(sent) and [m["role"] for m in sent][-1] == "user"


def test_requests_are_processed_one_at_a_time(socket: ClientConnection, api: Api) -> None:
    for text in ("first", "second"):
        body = {"type": "response.create", "model": api.tenant.scripted_agent, "input": text}
        socket.send(json.dumps(body))
    for text in ("first", "second"):
        order = EventOrder()
        while order.terminal is None:
            order.feed(receive(socket))
        assert order.finish()["output"][0]["content"][0]["text"] == f"echo: {text}"


def test_previous_response_not_found(socket: ClientConnection, api: Api) -> None:
    event = error_of(
        socket, {"model": api.tenant.scripted_agent, "input": "x", "previous_response_id": "resp_x"}
    )
    assert event["status"] == 400
    assert event["error"]["code"] == "previous_response_not_found"


def test_failed_continuation_evicts_its_previous_response(
    socket: ClientConnection, api: Api
) -> None:
    agent = api.tenant.scripted_agent
    first = turn(socket, {"model": agent, "input": "base", "store": False}).finish()["id"]
    failed = turn(
        socket,
        {"model": agent, "input": "!fail mid\na b c d", "previous_response_id": first},
    )
    assert failed.types[-2:] == ["error", "response.failed"]
    event = error_of(socket, {"model": agent, "input": "again", "previous_response_id": first})
    assert event["error"]["code"] == "previous_response_not_found"
    second = turn(socket, {"model": agent, "input": "base", "store": False}).finish()["id"]
    event = error_of(
        socket, {"model": agent, "input": "!fail before", "previous_response_id": second}
    )
    assert event["status"] == 503
    event = error_of(socket, {"model": agent, "input": "x", "previous_response_id": second})
    assert event["error"]["code"] == "previous_response_not_found"


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"type": "response.create", "stream_options": {}}, "stream_options"),
        ({"type": "response.create", "stream": "yes"}, "stream"),
        ({"type": "response.create", "background": True}, "background"),
        ({"type": "response.cancel"}, "type"),
        ({"type": "response.create", "bogus": 1}, "bogus"),
    ],
)
def test_bad_messages_get_error_events(
    socket: ClientConnection, api: Api, message: dict[str, Any], param: str
) -> None:
    socket.send(json.dumps({**message, "model": api.tenant.scripted_agent, "input": "x"}))
    event = receive(socket)
    check_component("WebSocketErrorEvent", event)
    assert event["status"] == 400 and event["error"]["param"] == param
    assert turn(socket, {"model": api.tenant.scripted_agent, "input": "ok"}).terminal


def test_websocket_needs_a_valid_key(server: Server) -> None:
    for key in ("", "sk-" + "0" * 64):
        with pytest.raises(InvalidStatus) as caught:
            open_socket(server, key).close()
        assert caught.value.response.status_code == 401


def test_connection_limit_reached(own: Api) -> None:
    server, tenant = own.server, own.tenant
    with open_socket(server, tenant.key) as sock:
        assert turn(sock, {"model": tenant.scripted_agent, "input": "quick"}).terminal
        time.sleep(1.2)
        event = receive(sock)
        check_component("WebSocketErrorEvent", event)
        assert event["error"]["code"] == "websocket_connection_limit_reached"
        with pytest.raises(ConnectionClosed):
            sock.recv(timeout=5)


@pytest.mark.parametrize("flag", [True, False])
def test_stream_flag_is_accepted_and_a_turn_streams_anyway(
    socket: ClientConnection, api: Api, flag: bool
) -> None:
    # The OpenAI Agents SDK's WebSocket model always sends `"stream": true`.
    order = turn(socket, {"model": api.tenant.scripted_agent, "input": "streamed", "stream": flag})
    assert order.finish()["status"] == "completed"


def test_a_message_over_the_body_limit_is_refused_and_the_socket_stays_usable(
    socket: ClientConnection, api: Api
) -> None:
    over = "x" * (3_145_728 + 1_000)  # limits.max_body_bytes + a little
    event = error_of(socket, {"model": api.tenant.scripted_agent, "input": over})
    assert event["status"] == 413 and event["error"]["code"] == "request_too_large"
    assert turn(socket, {"model": api.tenant.scripted_agent, "input": "still here"}).terminal


def test_a_frame_far_over_the_limit_closes_the_socket(server: Server, alice: Tenant) -> None:
    with open_socket(server, alice.key) as sock:
        over = "x" * 3_400_000  # past the limit and the server's frame cap above it
        body = {"type": "response.create", "model": alice.scripted_agent, "input": over}
        try:
            with pytest.raises(ConnectionClosed) as closed:
                sock.send(json.dumps(body))
                sock.recv(timeout=20)
        finally:
            sock.socket.close()  # a reset mid-send can leave the client's socket open
    # The server closes with 1009 at the frame's header; a client still writing the rest
    # may see the reset before it reads that close frame.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    with open_socket(server, alice.key) as fresh:  # the server carries on
        assert turn(fresh, {"model": alice.scripted_agent, "input": "after"}).terminal
