"""Traces exported over OTLP/HTTP to a local receiver that decodes the protobuf payload."""

from __future__ import annotations

import gzip
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.server import Server, running_server

PROMPT = "the secret words are violet harbour"


class Receiver:
    """An OTLP/HTTP trace receiver: every span it got, with attributes as plain values."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.add(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _plain(a.value) for a in span.attributes}
                    with self.lock:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "attributes": attributes,
                                "service": service.get("service.name"),
                            }
                        )

    def trace(self, trace_id: str, until: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.lock:
                found = [s for s in self.spans if s["trace_id"] == trace_id]
            if any(s["name"] == until for s in found):
                return found
            time.sleep(0.2)
        raise AssertionError(f"no span {until!r} in trace {trace_id}: {found}")


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.http.shutdown()
        found.http.server_close()


def traced_call(server: Server) -> tuple[str, str]:
    """One chat call with the caller's traceparent; (trace id, the caller's span id)."""
    email = f"traced-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    agent = server.create_agent(email, "fake", "gpt-4o-mini")
    key = server.create_key(email)
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    reply = httpx.post(
        f"{server.api}/chat/completions",
        json={"model": agent, "messages": [{"role": "user", "content": PROMPT}]},
        headers={"Authorization": f"Bearer {key}", "traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return trace_id, parent


def start(folder: Path, upstream_url: str, receiver: Receiver, **extra: Any) -> Any:
    observability = {"otlp_endpoint": receiver.url, "service_name": "agenthost-test", **extra}
    return running_server(folder, upstream_url, {"observability": observability})


def test_a_request_is_one_trace_continuing_the_callers_traceparent(
    tmp_path: Path, upstream_url: str, receiver: Receiver
) -> None:
    with start(tmp_path / "traced", upstream_url, receiver) as server:
        trace_id, parent = traced_call(server)
        spans = receiver.trace(trace_id, "POST /api/agents/v1/chat/completions")
    by_name = {span["name"]: span for span in spans}
    root = by_name["POST /api/agents/v1/chat/completions"]
    assert root["parent"] == parent  # continued, not a new trace
    assert root["service"] == "agenthost-test"
    assert root["attributes"]["http.response.status_code"] == 200
    model = by_name["chat gpt-4o-mini"]
    assert model["attributes"]["gen_ai.system"] == "openai"
    assert model["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert model["attributes"]["gen_ai.operation.name"] == "chat"
    assert model["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert model["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert model["attributes"]["gen_ai.request.max_tokens"] > 0
    for child in ("agenthost.admission", "chat gpt-4o-mini", "agenthost.settle"):
        assert by_name[child]["parent"] == root["span_id"], child
    # Without record_content no span carries the conversation.
    assert not any("violet" in str(span["attributes"]) for span in spans)


def test_record_content_puts_the_prompt_and_answer_on_the_model_span(
    tmp_path: Path, upstream_url: str, receiver: Receiver
) -> None:
    with start(tmp_path / "content", upstream_url, receiver, record_content=True) as server:
        trace_id, _ = traced_call(server)
        spans = receiver.trace(trace_id, "chat gpt-4o-mini")
    model = next(span for span in spans if span["name"] == "chat gpt-4o-mini")
    assert "violet harbour" in model["attributes"]["gen_ai.input.messages"]
    assert model["attributes"]["gen_ai.output.messages"]
