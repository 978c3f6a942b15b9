"""POST /responses/compact and `background: true` with polling and cancel."""

from __future__ import annotations

import base64
import time
from typing import Any

from tests.responses.conftest import Api, marker
from tests.responses.schema import check_component, check_response


def test_compaction_is_sealed_and_usable_as_input(api: Api) -> None:
    agent = api.tenant.fake_agent
    first = api.create({"model": agent, "input": "!text the secret is 42"})
    reply = api.post(
        {"model": agent, "previous_response_id": first["id"], "input": "more"}, "/compact"
    )
    assert reply.status_code == 200, reply.text
    compacted = reply.json()
    check_component("CompactResource", compacted)
    (item,) = compacted["output"]
    assert item["type"] == "compaction" and item["id"].startswith("cmp_")
    # Neither the text nor its bytes show: a short needle like "42" can occur in base64.
    sealed = item["encrypted_content"]
    assert "the secret is 42" not in sealed
    assert b"the secret is 42" not in base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    tag = marker()
    api.create({"model": agent, "input": [item, {"role": "user", "content": tag}]})
    sent = api.upstream_request(tag)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "user"]
    assert "the secret is 42" in str(sent[1]["content"])


def test_compaction_of_a_compaction_stays_flat(api: Api) -> None:
    agent = api.tenant.scripted_agent
    first = api.post({"model": agent, "input": "one"}, "/compact").json()["output"][0]
    second = api.post(
        {"model": agent, "input": [first, {"role": "user", "content": "two"}]}, "/compact"
    )
    assert second.status_code == 200
    reply = api.create({"model": agent, "input": [second.json()["output"][0]]})
    assert reply["output"][0]["content"][0]["text"] == "echo: two"


def test_compaction_without_model_is_400(api: Api) -> None:
    reply = api.post({"input": "hello"}, "/compact")
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "model"


def test_compaction_opens_only_for_its_owner_and_untampered(api: Api, bob_api: Api) -> None:
    item = api.post({"model": api.tenant.scripted_agent, "input": "mine"}, "/compact").json()
    sealed = item["output"][0]
    reply = bob_api.post({"model": bob_api.tenant.scripted_agent, "input": [sealed]})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_encrypted_content"
    forged = dict(sealed, encrypted_content=sealed["encrypted_content"][:-4] + "AAAA")
    reply = api.post({"model": api.tenant.scripted_agent, "input": [forged]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[0].encrypted_content"


def _poll(api: Api, response_id: str, until: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        data: dict[str, Any] = api.get(f"/{response_id}").json()
        if data["status"] in until:
            return data
        time.sleep(0.1)
    raise AssertionError(f"{response_id} never reached {until}")


def test_background_runs_without_the_client(api: Api) -> None:
    queued = api.create(
        {"model": api.tenant.scripted_agent, "input": "!sleep 300\nlater", "background": True}
    )
    assert queued["status"] == "queued" and queued["background"] is True
    done = _poll(api, queued["id"], {"completed", "failed"})
    check_response(done)
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == "echo: later"


def test_background_cancel_stops_the_run(api: Api) -> None:
    queued = api.create(
        {"model": api.tenant.scripted_agent, "input": "!sleep 20000\nnever", "background": True}
    )
    reply = api.post({}, f"/{queued['id']}/cancel")
    assert reply.status_code == 200, reply.text
    check_response(reply.json())
    assert reply.json()["status"] == "cancelled"
    assert api.get(f"/{queued['id']}").json()["status"] == "cancelled"
    foreground = api.create({"model": api.tenant.scripted_agent, "input": "x"})
    assert api.post({}, f"/{foreground['id']}/cancel").status_code == 400


def test_background_failure_is_stored_as_failed(api: Api) -> None:
    queued = api.create(
        {"model": api.tenant.scripted_agent, "input": "!fail before", "background": True}
    )
    failed = _poll(api, queued["id"], {"failed", "completed"})
    check_response(failed)
    assert failed["status"] == "failed" and failed["error"]["code"] == "upstream_unavailable"


def test_background_needs_store(api: Api) -> None:
    base = {"model": api.tenant.scripted_agent, "input": "x", "background": True}
    assert api.post({**base, "store": False}).json()["error"]["param"] == "store"
    streamed = {**base, "stream": True, "store": False}
    assert api.post(streamed).json()["error"]["param"] == "store"
