"""The load generator: a raw asyncio HTTP/1.1 keep-alive client, run as its own process.

    python -m bench.loadgen

reads one JSON command per stdin line and answers one JSON line on stdout:

    {"op": "run", "target": {...}, "concurrency": C, "duration": S, "ramp": R}
                                                  closed loop, measured for S seconds after R
    {"op": "hold", "target": {...}, "count": N, "timeout": S}          open N streams, keep them
    {"op": "release"}                                                   close the held streams
    {"op": "quit"}

A target is {"host", "port", "path", "headers", "body", "stream", "marker", "token",
"usage_key"}: a streamed answer's tokens are the occurrences of `token` in the SSE frames
that contain `marker` (a frame may carry several tokens), `usage_key` is the JSON key
holding the output token count of a non-streaming answer. Each of the C connections sends
its next request as soon as the previous answer is complete.

The C connections start evenly spread over the ramp R (the length of one answer): with
equal answer times, connections that all start at once stay in step and the server sees
a burst of C simultaneous requests once per answer time instead of a steady load. Rates
count the tokens and answers that arrive inside the measured window; latencies are those
of the requests sent inside it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import orjson

from bench.stats import summarize

_ERROR_FRAME = b'"error":{'


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    request: bytes
    stream: bool
    marker: bytes
    token: bytes
    usage: re.Pattern[bytes]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        body = orjson.dumps(data["body"])
        lines = [f"POST {data['path']} HTTP/1.1", f"host: {data['host']}:{data['port']}"]
        headers = {"content-type": "application/json", **data.get("headers", {})}
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"content-length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        usage = re.compile(b'"' + data["usage_key"].encode() + rb'":\s*(\d+)')
        return cls(
            data["host"],
            data["port"],
            head + body,
            data["stream"],
            data["marker"].encode(),
            data["token"].encode(),
            usage,
        )


@dataclass(slots=True)
class Outcome:
    """What one request measured; times in seconds from when it was sent."""

    ok: bool
    latency: float
    ttft: float | None
    tokens: int
    sent: float = 0.0  # perf_counter() when it was sent


@dataclass(slots=True)
class Tally:
    """Tokens and complete answers as they arrive, for rates over a time window."""

    tokens: int = 0
    answers: int = 0

    def snapshot(self) -> tuple[int, int]:
        return self.tokens, self.answers


@dataclass(slots=True)
class _Pending:
    sent: float
    first: float | None = None
    tokens: int = 0
    partial: bytes = b""  # the start of an SSE frame whose end has not arrived
    parts: list[bytes] = field(default_factory=list)
    failed: bool = False


class Connection(asyncio.Protocol):
    """One keep-alive connection sending one request at a time."""

    def __init__(self, target: Target, tally: Tally | None = None) -> None:
        self.target = target
        self.tally = tally or Tally()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: _Pending | None = None
        self.done: asyncio.Future[Outcome] | None = None
        self.first_token = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._finish(ok=False)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.close()

    def send(self) -> asyncio.Future[Outcome]:
        assert self.transport is not None, "connection closed"
        self.pending = _Pending(time.perf_counter())
        self.done = asyncio.get_running_loop().create_future()
        self.first_token.clear()
        self.transport.write(self.target.request)
        return self.done

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # httptools callbacks
    def on_headers_complete(self) -> None:
        if self.pending is not None and self.parser.get_status_code() != 200:
            self.pending.failed = True

    def on_body(self, body: bytes) -> None:
        pending = self.pending
        if pending is None:
            return
        if not self.target.stream:
            pending.parts.append(body)
            return
        *frames, pending.partial = (pending.partial + body).split(b"\n\n")
        found = 0
        for frame in frames:
            if self.target.marker in frame:
                found += frame.count(self.target.token)
            if _ERROR_FRAME in frame:
                pending.failed = True
        if found:
            pending.tokens += found
            self.tally.tokens += found
            if pending.first is None:
                pending.first = time.perf_counter()
                self.first_token.set()

    def on_message_complete(self) -> None:
        pending = self.pending
        if pending is not None and not self.target.stream:
            match = self.target.usage.search(b"".join(pending.parts))
            pending.tokens = int(match.group(1)) if match else 0
            self.tally.tokens += pending.tokens
            pending.first = time.perf_counter()
        self._finish(ok=True)

    def _finish(self, ok: bool) -> None:
        pending, done = self.pending, self.done
        self.pending = self.done = None
        if pending is None or done is None or done.done():
            return
        now = time.perf_counter()
        good = ok and not pending.failed
        ttft = pending.first - pending.sent if pending.first is not None else None
        if good:
            self.tally.answers += 1
        done.set_result(Outcome(good, now - pending.sent, ttft, pending.tokens, pending.sent))


async def connect(target: Target, tally: Tally | None = None) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: Connection(target, tally), target.host, target.port
    )
    return protocol


async def _open_many(target: Target, count: int, tally: Tally | None = None) -> list[Connection]:
    connections: list[Connection] = []
    for start in range(0, count, 64):  # in batches: a burst of SYNs overflows small backlogs
        size = min(64, count - start)
        connections += await asyncio.gather(*(connect(target, tally) for _ in range(size)))
    return connections


async def run_load(
    target: Target, concurrency: int, duration: float, ramp: float = 0.0
) -> dict[str, Any]:
    """Closed-loop load; the window measured is [ramp, ramp + duration) from the start."""
    tally = Tally()
    connections = await _open_many(target, concurrency, tally)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    window_start, window_end = started + ramp, started + ramp + duration
    loop = asyncio.get_running_loop()
    marks: list[tuple[int, int]] = []
    for mark in (window_start, window_end):
        loop.call_later(mark - started, lambda: marks.append(tally.snapshot()))

    async def worker(conn: Connection, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.perf_counter() < window_end:
            if conn.transport is None:
                try:
                    conn = await connect(target, tally)
                except OSError:
                    outcomes.append(Outcome(False, 0.0, None, 0, time.perf_counter()))
                    await asyncio.sleep(0.01)
                    continue
            outcomes.append(await conn.send())
        conn.close()

    spread = ramp / concurrency
    await asyncio.gather(*(worker(c, i * spread) for i, c in enumerate(connections)))
    while len(marks) < 2:  # the end mark's timer and the last worker can finish together
        marks.append(tally.snapshot())
    (tokens_before, answers_before), (tokens_after, answers_after) = marks
    in_window = [o for o in outcomes if window_start <= o.sent < window_end]
    return summarize(
        in_window,
        errors=sum(1 for o in outcomes if not o.ok),
        tokens=tokens_after - tokens_before,
        answers=answers_after - answers_before,
        seconds=duration,
    ) | {"ramp_s": ramp, "answers_total": sum(1 for o in outcomes if o.ok)}


class Holder:
    """Keeps N streams open between a `hold` and a `release` command."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []

    async def hold(self, target: Target, count: int, timeout: float) -> dict[str, Any]:
        started = time.perf_counter()
        self.connections = await _open_many(target, count)
        for conn in self.connections:
            conn.send()
        waits = [asyncio.ensure_future(c.first_token.wait()) for c in self.connections]
        _, not_done = await asyncio.wait(waits, timeout=timeout)
        for wait in not_done:
            wait.cancel()
        opened = sum(1 for c in self.connections if c.first_token.is_set())
        return {"requested": count, "open": opened, "seconds": time.perf_counter() - started}

    def release(self) -> dict[str, Any]:
        for conn in self.connections:
            conn.close()
        closed = len(self.connections)
        self.connections = []
        return {"closed": closed}


async def _serve_commands() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    holder = Holder()
    print(orjson.dumps({"ready": True}).decode(), flush=True)
    while line := await reader.readline():
        command = orjson.loads(line)
        op = command["op"]
        if op == "quit":
            break
        if op == "run":
            target = Target.from_json(command["target"])
            reply = await run_load(
                target, command["concurrency"], command["duration"], command.get("ramp", 0.0)
            )
        elif op == "hold":
            target = Target.from_json(command["target"])
            reply = await holder.hold(target, command["count"], command["timeout"])
        elif op == "release":
            reply = holder.release()
        else:
            reply = {"error": f"unknown op {op!r}"}
        print(orjson.dumps(reply).decode(), flush=True)
    holder.release()


def main() -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve_commands())


if __name__ == "__main__":
    main()
