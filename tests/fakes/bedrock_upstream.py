"""A fake AWS Bedrock Runtime (Converse API) upstream, run as its own process by tests.

    python tests/fakes/bedrock_upstream.py --port 0 --key AKID:SECRET [--key ...]

prints `READY <port>`. Written from the Bedrock Runtime API reference:
`POST /model/{modelId}/converse` (one JSON answer) and `POST /model/{modelId}/converse-stream`
(`application/vnd.amazon.eventstream`: messageStart, contentBlockStart/Delta/Stop,
messageStop, metadata, each a binary event-stream message with `:event-type`,
`:content-type` and `:message-type` headers). Every request must carry a SigV4
`Authorization` header: the signature is recomputed with botocore's signer from the
request as received and the secret known for its access key id; an unknown key id gets
403 UnrecognizedClientException, a wrong signature 403 InvalidSignatureException, no
header 403 MissingAuthenticationTokenException. Errors are Bedrock's `{"message": ...}`
with the kind in `x-amzn-ErrorType`.

Directive lines in the last user turn's text choose the answer:

    !text SOME TEXT        fixed reply (default "Hello from fake bedrock"), an event per word
    !tokens N              N words, paced 20 ms apart (for cancellation tests)
    !call NAME {json}      a toolUse block (repeatable); only when that tool is declared;
                           its input is streamed in two pieces
    !reasoning TEXT        a reasoningContent block first
    !cached N / !written N usage.cacheReadInputTokens / cacheWriteInputTokens = N
    !http STATUS           that status with Bedrock's error body (its message quotes the
                           secret, as a careless proxy might)
    !cut                   close the connection after two text deltas, without messageStop
    !exception KIND [AT]   an exception message KIND (e.g. throttlingException) as event AT
                           (default 3, after two text deltas); then the body ends
    !corrupt               the third text delta's frame with one payload bit flipped (its
                           message CRC no longer matches), then the rest as usual
    !stop REASON           that stopReason (e.g. max_tokens, guardrail_intervened)

When the last user turn carries toolResult blocks it answers "tool said: <text>". Usage:
inputTokens = words in all text blocks, outputTokens = words of text + 5 per call + words
of reasoning. `GET /_requests` lists the last 200 requests (path, headers, body, outcome);
`DELETE` clears.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_REPLY = "Hello from fake bedrock"
REQUESTS: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
KEYS: dict[str, str] = {}  # access key id -> secret
KINDS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


@dataclass
class Plan:
    words: list[str] = field(default_factory=lambda: DEFAULT_REPLY.split())
    thought: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cached: int = 0
    written: int = 0
    status: int | None = None
    cut: bool = False
    corrupt: bool = False
    exception: str | None = None
    exception_at: int = 3
    paced: bool = False
    stop: str = "end_turn"
    input_tokens: int = 0


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(b["text"] for b in blocks if isinstance(b.get("text"), str))


def _results(blocks: list[dict[str, Any]]) -> list[str]:
    return [_texts(b["toolResult"].get("content") or []) for b in blocks if "toolResult" in b]


def plan_for(body: dict[str, Any]) -> Plan:
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    blocks = users[-1].get("content", []) if users else []
    words = sum(len(_texts(m.get("content", [])).split()) for m in messages)
    plan = Plan(input_tokens=words)
    declared = {t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools") or []}
    results = _results(blocks)
    for line in _texts(blocks).splitlines():
        word, _, arg = line.strip().partition(" ")
        if word == "!text":
            plan.words = arg.split()
        elif word == "!tokens":
            plan.words, plan.paced = ["tok"] * int(arg), True
        elif word == "!call":
            name, _, args = arg.partition(" ")
            if name in declared and not results:
                plan.calls.append((name, orjson.loads(args or "{}")))
        elif word == "!reasoning":
            plan.thought = arg.split()
        elif word in ("!cached", "!written"):
            setattr(plan, word[1:], int(arg))
        elif word == "!http":
            plan.status = int(arg)
        elif word in ("!cut", "!corrupt"):
            setattr(plan, word[1:], True)
        elif word == "!exception":
            kind, _, at = arg.partition(" ")
            plan.exception, plan.exception_at = kind, int(at or 3)
        elif word == "!stop":
            plan.stop = arg
    if results:
        plan.words = ("tool said: " + "; ".join(results)).split()
    if plan.calls:
        plan.words, plan.stop = [], "tool_use"
    return plan


def _usage(plan: Plan) -> dict[str, Any]:
    output = len(plan.words) + 5 * len(plan.calls) + len(plan.thought)
    usage = {"inputTokens": plan.input_tokens, "outputTokens": output}
    total = plan.input_tokens + output + plan.cached + plan.written
    if plan.cached or plan.written:
        usage |= {"cacheReadInputTokens": plan.cached, "cacheWriteInputTokens": plan.written}
    return usage | {"totalTokens": total}


def events(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(event type, payload) of a ConverseStream answer."""
    out: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    index = 0
    if plan.thought:
        delta = {"reasoningContent": {"text": " ".join(plan.thought)}}
        out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        signature = {"reasoningContent": {"signature": "sig-fake"}}
        out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": signature}))
        out.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if plan.words:
        for number, word in enumerate(plan.words):
            text = word if number == 0 else " " + word
            out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": text}}))
        out.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for number, (name, args) in enumerate(plan.calls):
        use = {"toolUseId": f"tooluse_{name}_{number}", "name": name}
        out.append(("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": use}}))
        text = orjson.dumps(args).decode()
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            delta = {"toolUse": {"input": piece}}
            out.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        out.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    out.append(("messageStop", {"stopReason": plan.stop}))
    out.append(("metadata", {"usage": _usage(plan), "metrics": {"latencyMs": 12}}))
    return out


def whole(plan: Plan) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.thought:
        text = " ".join(plan.thought)
        content.append(
            {"reasoningContent": {"reasoningText": {"text": text, "signature": "sig-fake"}}}
        )
    if plan.words:
        content.append({"text": " ".join(plan.words)})
    for number, (name, args) in enumerate(plan.calls):
        content.append(
            {"toolUse": {"toolUseId": f"tooluse_{name}_{number}", "name": name, "input": args}}
        )
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": plan.stop,
        "usage": _usage(plan),
        "metrics": {"latencyMs": 12},
    }


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (value type 7), as AWS frames it:
    prelude (total length, headers length, CRC32), headers, payload, CRC32 of it all."""
    raw = b""
    for name, value in headers.items():
        key, text = name.encode(), value.encode()
        raw += bytes([len(key)]) + key + b"\x07" + struct.pack(">H", len(text)) + text
    prelude = struct.pack(">II", 12 + len(raw) + len(payload) + 4, len(raw))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return head + struct.pack(">I", zlib.crc32(head))


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(payload | {"p": "abcd"}))


def _exception(kind: str) -> bytes:
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps({"message": f"fake {kind}"}))


class EventStream(Response):
    """An event-stream answer written message by message, watching for the client going
    away so the recorded outcome says "disconnected"; `!cut` ends it mid-body."""

    def __init__(self, plan: Plan, record: dict[str, Any]) -> None:
        super().__init__(media_type="application/vnd.amazon.eventstream")
        self.plan, self.record = plan, record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/vnd.amazon.eventstream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        producer = asyncio.ensure_future(self._produce(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()
        if not producer.done():
            producer.cancel()
            self.record.update(outcome="disconnected", ended_at=time.time())
            return
        complete = producer.result()
        self.record.update(outcome="done" if complete else "cut", ended_at=time.time())
        if complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Otherwise return without completing: uvicorn closes the connection mid-body.

    async def _produce(self, send: Send) -> bool:
        for number, (kind, payload) in enumerate(events(self.plan)):
            if self.plan.cut and number == 3:
                return False
            if self.plan.exception is not None and number == self.plan.exception_at:
                frame = _exception(self.plan.exception)
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                return True
            frame = _event(kind, payload)
            if self.plan.corrupt and number == 3:
                frame = frame[:-6] + bytes([frame[-6] ^ 1]) + frame[-5:]
            # Sent in two writes, so readers meet messages split across chunks.
            for part in (frame[:7], frame[7:]):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.02 if self.plan.paced else 0)
        return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def error(status: int, message: str, kind: str | None = None) -> Response:
    kind = kind or KINDS.get(status, "InternalServerException")
    headers = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return Response(
        orjson.dumps({"message": message}), status, headers=headers, media_type="application/json"
    )


def _key_id(request: Request) -> str:
    credential = request.headers.get("authorization", "").partition("Credential=")[2]
    return credential.partition("/")[0]


def _signature_refusal(request: Request, body: bytes) -> Response | None:
    """Recompute the SigV4 signature with botocore and compare (None: it matches)."""
    header = request.headers.get("authorization", "")
    if not header.startswith("AWS4-HMAC-SHA256 "):
        return error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
    fields = dict(
        item.strip().split("=", 1) for item in header.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    key_id, _, scope = fields.get("Credential", "").partition("/")
    date, region, service, _ = (scope.split("/") + ["", "", "", ""])[:4]
    secret = KEYS.get(key_id)
    if secret is None or service != "bedrock":
        return error(
            403,
            "The security token included in the request is invalid.",
            "UnrecognizedClientException",
        )
    signed = fields.get("SignedHeaders", "").split(";")
    raw_path = request.scope["raw_path"].decode()
    url = f"http://{request.headers['host']}{raw_path}"
    headers = {name: request.headers.get(name, "") for name in signed}
    check = AWSRequest(method=request.method, url=url, data=body, headers=headers)
    check.context["timestamp"] = request.headers.get("x-amz-date", "")
    token = request.headers.get("x-amz-security-token")
    auth = SigV4Auth(Credentials(key_id, secret, token), "bedrock", region)
    expected = auth.signature(auth.string_to_sign(check, auth.canonical_request(check)), check)
    if expected != fields.get("Signature") or not check.context["timestamp"].startswith(date):
        return error(
            403,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
            "InvalidSignatureException",
        )
    return None


async def converse(request: Request) -> Response:
    model, _, action = request.path_params["target"].rpartition("/")
    raw = await request.body()
    record: dict[str, Any] = {
        "path": request.scope["raw_path"].decode(),
        "model": model,
        "action": action,
        "headers": dict(request.headers),
        "outcome": "pending",
    }
    REQUESTS.append(record)
    try:
        record["body"] = body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record["outcome"] = "http_400"
        return error(400, "Malformed input request, please reformat your input and try again.")
    refused = _signature_refusal(request, raw)
    if refused is not None:
        record["outcome"] = f"http_{refused.status_code}"
        return refused
    if action not in ("converse", "converse-stream"):
        record["outcome"] = "http_404"
        return error(404, f"Unknown operation {action!r}.")
    plan = plan_for(body)
    if plan.status is not None:
        record["outcome"] = f"http_{plan.status}"
        key_id = _key_id(request)
        return error(plan.status, f"fake error {plan.status} (request secret {KEYS[key_id]})")
    if action == "converse":
        record["outcome"] = "done"
        return Response(orjson.dumps(whole(plan)), media_type="application/json")
    return EventStream(plan, record)


async def requests_log(request: Request) -> Response:
    if request.method == "DELETE":
        REQUESTS.clear()
    return Response(orjson.dumps(list(REQUESTS)), media_type="application/json")


app = Starlette(
    routes=[
        Route("/model/{target:path}", converse, methods=["POST"]),
        Route("/_requests", requests_log, methods=["GET", "DELETE"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", action="append", default=[], help="ACCESS_KEY_ID:SECRET")
    args = parser.parse_args()
    for pair in args.key:
        key_id, _, secret = pair.partition(":")
        KEYS[key_id] = secret
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"READY {sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
