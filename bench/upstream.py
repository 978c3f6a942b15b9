"""A lean fixed-timing OpenAI-compatible upstream: the "direct" baseline of the benchmark.

    python -m bench.upstream --port 0 [--ttft-ms X --itl-ms Y --tokens N]

prints `READY <port>` once listening. It answers `POST /v1/chat/completions` (streaming
or not) with N tokens of "tok ": the first after X ms, then one every Y ms, scheduled on
absolute times so lateness never accumulates. A request may override the timing with a
line `!bench ttft=X itl=Y tokens=N` in its messages.

It is a raw asyncio protocol (httptools parser, uvloop when present) writing pre-built
chunked frames, so it sustains far more than the gateway it is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httptools
import orjson

MODEL = "bench-model"
TOKEN = "tok "
_DIRECTIVE = re.compile(rb"!bench ttft=(\d+(?:\.\d+)?) itl=(\d+(?:\.\d+)?) tokens=(\d+)")
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
_CHUNKED_END = b"0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Timing:
    ttft_ms: float
    itl_ms: float
    tokens: int


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(data: Any) -> bytes:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return _chunked(b"data: " + raw + b"\n\n")


def _usage(tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": 8,
        "completion_tokens": tokens,
        "total_tokens": 8 + tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


class Frames:
    """Every byte string the server sends, built once per shape and reused."""

    def __init__(self) -> None:
        self.base = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
        }
        self._stream: dict[bool, tuple[bytes, bytes, bytes]] = {}
        self._tails: dict[tuple[bool, int], bytes] = {}
        self._bodies: dict[int, bytes] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None, usage: bool) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk: dict[str, Any] = {**self.base, "choices": [choice]}
        if usage:
            chunk["usage"] = None
        return _sse(chunk)

    def stream(self, usage: bool) -> tuple[bytes, bytes, bytes]:
        """(head + role frame, one token frame, finish frame) for this usage setting."""
        if usage not in self._stream:
            self._stream[usage] = (
                _STREAM_HEAD + self._chunk({"role": "assistant", "content": ""}, None, usage),
                self._chunk({"content": TOKEN}, None, usage),
                self._chunk({}, "stop", usage),
            )
        return self._stream[usage]

    def tail(self, usage: bool, tokens: int) -> bytes:
        """Finish, the usage chunk when asked for, `[DONE]` and the chunked terminator."""
        key = (usage, tokens)
        if key not in self._tails:
            parts = [self.stream(usage)[2]]
            if usage:
                parts.append(_sse({**self.base, "choices": [], "usage": _usage(tokens)}))
            parts += [_sse(b"[DONE]"), _CHUNKED_END]
            self._tails[key] = b"".join(parts)
        return self._tails[key]

    def completion(self, tokens: int) -> bytes:
        """A whole non-streaming HTTP response with `tokens` tokens."""
        if tokens not in self._bodies:
            message = {"role": "assistant", "content": TOKEN * tokens}
            body = orjson.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": self.base["created"],
                    "model": MODEL,
                    "choices": [
                        {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
                    ],
                    "usage": _usage(tokens),
                }
            )
            self._bodies[tokens] = _json_response(body)
        return self._bodies[tokens]


def _json_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, len(body)) + body


_MODELS = _json_response(
    orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "b"}]})
)
_TRACES_ACCEPTED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
)
_NOT_FOUND = _json_response(b'{"error":{"message":"not found"}}', b"404 Not Found")
# `--jwks FILE`: an OIDC issuer's discovery and keys under /oidc (bench --oidc).
OIDC: dict[bytes, bytes] = {}
_BAD_REQUEST = _json_response(b'{"error":{"message":"bad json"}}', b"400 Bad Request")


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered one after another."""

    def __init__(self, default: Timing, frames: Frames, pacer: Pacer) -> None:
        self.default = default
        self.frames = frames
        self.pacer = pacer
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.handles: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        # The previous answer on this connection is complete: its timers have fired.
        self.url, self.body = b"", []
        self.handles.clear()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        if method == b"POST" and self.url.endswith(b"/chat/completions"):
            self._chat(b"".join(self.body))
        elif method == b"GET" and self.url.endswith(b"/models"):
            self._write(_MODELS)
        elif method == b"POST" and self.url.endswith(b"/v1/traces"):
            self._write(_TRACES_ACCEPTED)  # agenthost's traces (`--tracing`), dropped
        elif method == b"GET" and self.url in OIDC:
            self._write(OIDC[self.url])
        else:
            self._write(_NOT_FOUND)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _timing(self, raw: bytes) -> Timing:
        match = _DIRECTIVE.search(raw)
        if match is None:
            return self.default
        return Timing(float(match.group(1)), float(match.group(2)), int(match.group(3)))

    def _chat(self, raw: bytes) -> None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._write(_BAD_REQUEST)
            return
        timing = self._timing(raw)
        if not body.get("stream"):
            delay = (timing.ttft_ms + timing.itl_ms * max(timing.tokens - 1, 0)) / 1000
            self._later(delay, self.frames.completion(timing.tokens))
            return
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._stream(timing, usage)

    def _later(self, delay: float, data: bytes) -> None:
        if delay <= 0:
            self._write(data)
        else:
            self._at(asyncio.get_running_loop().time() + delay, lambda: self._write(data))

    def _at(self, when: float, action: Callable[[], None]) -> None:
        self.handles.append(asyncio.get_running_loop().call_at(when, action))

    def _stream(self, timing: Timing, usage: bool) -> None:
        head, token, _ = self.frames.stream(usage)
        tail = self.frames.tail(usage, timing.tokens)
        self._write(head)
        if timing.ttft_ms <= 0 and timing.itl_ms <= 0:
            self._write(token * timing.tokens + tail)
            return
        start = asyncio.get_running_loop().time() + timing.ttft_ms / 1000
        self.pacer.add(_Paced(self, token, tail, timing.tokens, start, timing.itl_ms / 1000))


@dataclass(slots=True)
class _Paced:
    """One streamed answer in progress: token `sent` is due at `start + sent * itl`."""

    conn: UpstreamProtocol
    token: bytes
    tail: bytes
    tokens: int
    start: float
    itl: float
    sent: int = 0

    @property
    def due(self) -> float:
        return self.start + self.sent * self.itl

    def emit(self, now: float) -> bool:
        """Write every token due by `now` in one write; True while tokens remain."""
        if self.conn.transport is None:
            return False
        remaining = self.tokens - self.sent
        count = remaining if self.itl <= 0 else min(remaining, int((now - self.due) / self.itl) + 1)
        self.sent += count
        done = self.sent >= self.tokens
        self.conn.transport.write(self.token * count + (self.tail if done else b""))
        return not done


class Pacer:
    """One timer drives every paced stream (instead of a timer per token): streams wait in
    per-millisecond buckets and the timer fires at the earliest bucket."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[_Paced]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.timer_slot: int | None = None

    def add(self, paced: _Paced) -> None:
        self._file(paced)
        self._schedule()

    def _file(self, paced: _Paced) -> None:
        slot = -int(-paced.due * 1000 // 1)  # the first millisecond at or after it is due
        self.buckets.setdefault(slot, []).append(paced)

    def _schedule(self) -> None:
        if not self.buckets:
            return
        slot = min(self.buckets)
        if self.timer_slot is not None and self.timer_slot <= slot:
            return  # the timer already fires in time for it
        if self.timer is not None:
            self.timer.cancel()
        self.timer_slot = slot
        self.timer = asyncio.get_running_loop().call_at(slot / 1000, self._tick)

    def _tick(self) -> None:
        self.timer = self.timer_slot = None
        now = asyncio.get_running_loop().time()
        now_ms = int(now * 1000)
        for slot in [s for s in self.buckets if s <= now_ms]:
            for paced in self.buckets.pop(slot):
                if paced.emit(now):
                    self._file(paced)
        self._schedule()


def publish_keys(host: str, port: int, jwks: Path) -> None:
    issuer = f"http://{host}:{port}/oidc"
    discovery = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
    OIDC[b"/oidc/.well-known/openid-configuration"] = _json_response(orjson.dumps(discovery))
    OIDC[b"/oidc/jwks"] = _json_response(jwks.read_bytes())


async def serve(host: str, port: int, default: Timing, jwks: Path | None = None) -> None:
    loop = asyncio.get_running_loop()
    frames = Frames()
    pacer = Pacer()
    server = await loop.create_server(
        lambda: UpstreamProtocol(default, frames, pacer),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    bound = server.sockets[0].getsockname()[1]
    if jwks is not None:
        publish_keys(host, bound, jwks)
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="lean fixed-timing OpenAI-compatible upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--jwks", type=Path, default=None, help="publish OIDC keys under /oidc")
    args = parser.parse_args(argv)
    default = Timing(args.ttft_ms, args.itl_ms, args.tokens)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(args.host, args.port, default, args.jwks))


if __name__ == "__main__":
    main()
