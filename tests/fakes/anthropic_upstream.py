"""A fake Anthropic Messages API upstream, run as its own process by tests.

    python tests/fakes/anthropic_upstream.py --port 0

prints `READY <port>`. `POST /v1/messages` (stream or not) answers from directive lines
in the last user message's text:

    !text SOME TEXT      fixed reply (default "Hello from fake anthropic")
    !call NAME {json}    a tool_use block (repeatable); only when that tool is offered
    !thinking TEXT       a thinking block (thinking_delta + signature_delta) first
    !cache_read N        usage.cache_read_input_tokens = N
    !cache_write N       usage.cache_creation_input_tokens = N
    !http STATUS         that status with an Anthropic error body
    !stop REASON         the stop_reason to report (default end_turn / tool_use)

When the last user message carries tool_result blocks it answers "tool said: <content>".
Usage: input_tokens = 10 per message (excluding cache tokens, as Anthropic reports it),
output_tokens = words of text + 5 per tool call. `GET /_requests` lists what it got.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

REQUESTS: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)


@dataclass
class Plan:
    text: str = "Hello from fake anthropic"
    thinking: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cache_read: int = 0
    cache_write: int = 0
    status: int | None = None
    stop: str | None = None


def _last_user(body: dict[str, Any]) -> tuple[str, list[str]]:
    """The last user message's text and its tool results."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return "", []
    content = users[-1]["content"]
    if isinstance(content, str):
        return content, []
    texts, results = [], []
    for block in content:
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, list):
                inner = "".join(b.get("text", "") for b in inner)
            results.append(str(inner))
    return "\n".join(texts), results


def plan_for(body: dict[str, Any]) -> Plan:
    text, results = _last_user(body)
    plan = Plan()
    offered = {t.get("name") for t in body.get("tools") or []}
    for line in text.splitlines():
        word, _, arg = line.strip().partition(" ")
        if word == "!text":
            plan.text = arg
        elif word == "!call":
            name, _, args = arg.partition(" ")
            if name in offered and not results:
                plan.calls.append((name, orjson.loads(args or "{}")))
        elif word == "!thinking":
            plan.thinking = arg
        elif word in ("!cache_read", "!cache_write"):
            setattr(plan, word[1:], int(arg))
        elif word == "!http":
            plan.status = int(arg)
        elif word == "!stop":
            plan.stop = arg
    if results:
        plan.text = "tool said: " + "; ".join(results)
    return plan


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _usage(body: dict[str, Any], plan: Plan) -> dict[str, int]:
    return {
        "input_tokens": 10 * len(body.get("messages", [])),
        "cache_creation_input_tokens": plan.cache_write,
        "cache_read_input_tokens": plan.cache_read,
        "output_tokens": 1,
    }


def _blocks(plan: Plan) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.thinking is not None:
        blocks.append({"type": "thinking", "thinking": plan.thinking, "signature": "sig-abc"})
    if plan.calls:
        for number, (name, args) in enumerate(plan.calls):
            blocks.append(
                {"type": "tool_use", "id": f"toolu_{number}", "name": name, "input": args}
            )
    else:
        blocks.append({"type": "text", "text": plan.text})
    return blocks


def _output_tokens(plan: Plan) -> int:
    return len(plan.text.split()) + 5 * len(plan.calls) if not plan.calls else 5 * len(plan.calls)


def events(body: dict[str, Any], plan: Plan) -> list[bytes]:
    usage = _usage(body, plan)
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    out = [_frame("message_start", {"message": message}), _frame("ping", {})]
    for index, block in enumerate(_blocks(plan)):
        out.extend(_block_events(index, block))
    stop = plan.stop or ("tool_use" if plan.calls else "end_turn")
    delta_usage = {"output_tokens": _output_tokens(plan)}
    out.append(
        _frame(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": delta_usage},
        )
    )
    out.append(_frame("message_stop", {}))
    return out


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    kind = block["type"]
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        words = block["text"].split(" ")
        deltas = [
            {"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(words)
        ]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        raw = orjson.dumps(block["input"]).decode()
        middle = len(raw) // 2
        deltas = [
            {"type": "input_json_delta", "partial_json": part}
            for part in (raw[:middle], raw[middle:])
        ]
    frames = [_frame("content_block_start", {"index": index, "content_block": start})]
    frames += [_frame("content_block_delta", {"index": index, "delta": d}) for d in deltas]
    frames.append(_frame("content_block_stop", {"index": index}))
    return frames


def _error(status: int) -> Response:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    body = {
        "type": "error",
        "error": {"type": kinds.get(status, "api_error"), "message": f"fake error {status}"},
    }
    return Response(orjson.dumps(body), status, media_type="application/json")


async def messages(request: Request) -> Response:
    body = orjson.loads(await request.body())
    REQUESTS.append({"body": body, "headers": dict(request.headers)})
    plan = plan_for(body)
    if plan.status is not None:
        return _error(plan.status)
    if not body.get("stream"):
        usage = _usage(body, plan) | {"output_tokens": _output_tokens(plan)}
        stop = plan.stop or ("tool_use" if plan.calls else "end_turn")
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": _blocks(plan),
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        return Response(orjson.dumps(message), media_type="application/json")

    async def stream() -> Any:
        for frame in events(body, plan):
            yield frame
            await asyncio.sleep(0)

    return StreamingResponse(stream(), media_type="text/event-stream")


async def list_requests(request: Request) -> Response:
    if request.method == "DELETE":
        REQUESTS.clear()
    return Response(orjson.dumps(list(REQUESTS)), media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/_requests", list_requests, methods=["GET", "DELETE"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        sys.stdout.write(f"READY {sock.getsockname()[1]}\n")
        sys.stdout.flush()
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
