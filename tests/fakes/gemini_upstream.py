"""A fake Gemini API (generativelanguage v1beta) upstream, run as its own process by tests.

    python tests/fakes/gemini_upstream.py --port 0 [--key KEY]

prints `READY <port>`. Written from Google's API reference:
`POST /v1beta/models/{model}:generateContent` (one JSON `GenerateContentResponse`),
`POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (one per `data:` frame;
without `alt=sse` a JSON array), `GET /v1beta/models`. Without an `x-goog-api-key` header
it answers 403 PERMISSION_DENIED; with `--key` set, another key gets Google's 400
INVALID_ARGUMENT with reason API_KEY_INVALID. Errors use Google's body
`{"error": {"code", "message", "status"}}`.

Vertex AI's address is served too: `POST /v1/projects/{project}/locations/{location}/
publishers/google/models/{model}:streamGenerateContent` wants `Authorization: Bearer` with
a token from `POST /token`, an OAuth token endpoint for service accounts (JWT bearer grant;
the assertion's claims are read, not verified, and recorded; an issuer starting with
"refused" gets 400 invalid_grant); another token gets 401 UNAUTHENTICATED.

Directive lines in the last user turn's text choose the answer:

    !text SOME TEXT      fixed reply (default "Hello from fake gemini"), a frame per word
    !tokens N            N words, paced 20 ms apart (for cancellation tests)
    !call NAME {json}    a functionCall part (repeatable); only when that function is declared
    !reasoning TEXT      a thought part (`thought: true`) first
    !cached N            usageMetadata.cachedContentTokenCount = N (inside promptTokenCount)
    !http STATUS         that status with Google's error body (its message quotes the key)
    !cut                 close the connection after two text frames, without finishReason
    !error [AT]          Google's error object (code 500) as frame AT (default 2, after two
                         text frames), then the body ends; 0 sends it first, with code 503
    !blocked             the prompt refused: promptFeedback.blockReason SAFETY, no candidates
    !finish REASON       that finishReason (e.g. SAFETY, MAX_TOKENS)

When the last user turn carries functionResponse parts it answers
"tool said: <output>". Usage: promptTokenCount = words in all text parts + cached,
candidatesTokenCount = words of text + 5 per call, thoughtsTokenCount = words of thought.
A function call part carries `thoughtSignature: "sig-<name>"`. `GET /_requests` lists the
last 200 requests (path, headers, body, outcome); `DELETE` clears.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_REPLY = "Hello from fake gemini"
REQUESTS: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
TOKENS: set[str] = set()  # access tokens issued by /token
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Options:
    key: str | None = None


OPTIONS = Options()


@dataclass
class Plan:
    words: list[str] = field(default_factory=lambda: DEFAULT_REPLY.split())
    thought: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cached: int = 0
    status: int | None = None
    cut: bool = False
    error_at: int | None = None
    blocked: bool = False
    paced: bool = False
    finish: str = "STOP"
    prompt_tokens: int = 0


def _texts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(p["text"] for p in parts if isinstance(p.get("text"), str))


def _results(parts: list[dict[str, Any]]) -> list[str]:
    out = []
    for part in parts:
        response = part.get("functionResponse")
        if isinstance(response, dict):
            inner = response.get("response") or {}
            out.append(str(inner.get("output", inner)))
    return out


def plan_for(body: dict[str, Any]) -> Plan:
    contents = body.get("contents") or []
    users = [c for c in contents if c.get("role") == "user"]
    parts = users[-1].get("parts", []) if users else []
    words = sum(len(_texts(c.get("parts", [])).split()) for c in contents)
    plan = Plan(prompt_tokens=words)
    declared = {
        d.get("name")
        for tool in body.get("tools") or []
        for d in tool.get("functionDeclarations") or []
    }
    results = _results(parts)
    for line in _texts(parts).splitlines():
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
        elif word == "!cached":
            plan.cached = int(arg)
        elif word == "!http":
            plan.status = int(arg)
        elif word in ("!cut", "!blocked"):
            setattr(plan, word[1:], True)
        elif word == "!error":
            plan.error_at = int(arg or 2)
        elif word == "!finish":
            plan.finish = arg
    if results:
        plan.words = ("tool said: " + "; ".join(results)).split()
    if plan.calls:
        plan.words = []
    return plan


def _usage(plan: Plan, final: bool) -> dict[str, Any]:
    candidates = len(plan.words) + 5 * len(plan.calls) if final else 0
    usage: dict[str, Any] = {"promptTokenCount": plan.prompt_tokens + plan.cached}
    # Proto3 JSON leaves zero counts out, as Google's does.
    for key, value in (
        ("candidatesTokenCount", candidates),
        ("thoughtsTokenCount", len(plan.thought) if final else 0),
        ("cachedContentTokenCount", plan.cached),
    ):
        if value:
            usage[key] = value
    usage["totalTokenCount"] = sum(v for k, v in usage.items() if k != "cachedContentTokenCount")
    return usage


def _response(
    model: str, plan: Plan, parts: list[dict[str, Any]], finish: str | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(plan, finish is not None),
        "modelVersion": model,
        "responseId": "fake-response",
    }


def _call_parts(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"functionCall": {"name": name, "args": args}, "thoughtSignature": f"sig-{name}"}
        for name, args in plan.calls
    ]


def frames(model: str, plan: Plan) -> list[dict[str, Any]]:
    """The streamed responses: thought, words, calls; the last carries finishReason."""
    if plan.blocked:
        usage = {"promptTokenCount": plan.prompt_tokens, "totalTokenCount": plan.prompt_tokens}
        return [{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}]
    out = []
    if plan.thought:
        out.append(
            _response(model, plan, [{"text": " ".join(plan.thought), "thought": True}], None)
        )
    for number, word in enumerate(plan.words):
        out.append(_response(model, plan, [{"text": word if number == 0 else " " + word}], None))
    if plan.calls:
        out.append(_response(model, plan, _call_parts(plan), None))
    out.append(_response(model, plan, [], plan.finish))
    return out


def whole(model: str, plan: Plan) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if plan.thought:
        parts.append({"text": " ".join(plan.thought), "thought": True})
    if plan.words:
        parts.append({"text": " ".join(plan.words)})
    return _response(model, plan, parts + _call_parts(plan), plan.finish)


class SseStream(Response):
    """An SSE answer written frame by frame, watching for the client going away so the
    recorded outcome says "disconnected"; `!cut` ends it without finishing the body."""

    def __init__(self, model: str, plan: Plan, record: dict[str, Any]) -> None:
        super().__init__(media_type="text/event-stream")
        self.model, self.plan, self.record = model, plan, record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
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
        for number, data in enumerate(frames(self.model, self.plan)):
            if self.plan.cut and number == 2:
                return False
            if self.plan.error_at == number:
                code = 503 if number == 0 else 500
                failure = {"code": code, "message": "fake failure", "status": STATUSES[code]}
                frame = b"data: " + orjson.dumps({"error": failure}) + b"\r\n\r\n"
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                return True  # after an error frame the body ends properly
            frame = b"data: " + orjson.dumps(data) + b"\r\n\r\n"
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            await asyncio.sleep(0.02 if self.plan.paced else 0)
        return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def error(status: int, message: str, reason: str | None = None) -> Response:
    body: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUSES.get(status, "UNKNOWN"),
    }
    if reason:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return _json({"error": body}, status)


def _refusal(request: Request) -> Response | None:
    key = request.headers.get("x-goog-api-key")
    if not key:
        return error(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )
    if OPTIONS.key is not None and key != OPTIONS.key:
        return error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
    return None


def _vertex_refusal(request: Request) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or token not in TOKENS:
        message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return error(401, message)
    return None


async def generate(request: Request) -> Response:
    return await _generate(request, _refusal)


async def vertex_generate(request: Request) -> Response:
    return await _generate(request, _vertex_refusal)


async def _generate(request: Request, check: Any) -> Response:
    model, _, method = request.path_params["target"].partition(":")
    record: dict[str, Any] = {
        "path": request.url.path,
        "query": str(request.url.query),
        "headers": dict(request.headers),
        "outcome": "pending",
    }
    REQUESTS.append(record)
    refused = check(request)
    if refused is not None:
        record["outcome"] = f"http_{refused.status_code}"
        return refused
    try:
        body = record["body"] = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error(400, "Invalid JSON payload received.")
    if method not in ("generateContent", "streamGenerateContent"):
        return error(404, f"Method {method!r} not found.")
    plan = plan_for(body)
    if plan.status is not None:
        record["outcome"] = f"http_{plan.status}"
        key = request.headers.get("x-goog-api-key")
        return error(plan.status, f"fake error {plan.status} (request key {key})")
    if method == "generateContent":
        record["outcome"] = "done"
        return _json(whole(model, plan))
    if request.query_params.get("alt") != "sse":
        record["outcome"] = "done"
        return _json(frames(model, plan))
    return SseStream(model, plan, record)


async def token(request: Request) -> Response:
    form = await request.form()
    claims = jwt.decode(str(form.get("assertion")), options={"verify_signature": False})
    REQUESTS.append({"path": "/token", "grant_type": form.get("grant_type"), "claims": claims})
    if str(claims.get("iss", "")).startswith("refused"):
        body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return _json(body, 400)
    issued = f"ya29.fake-{len(TOKENS)}"
    TOKENS.add(issued)
    return _json({"access_token": issued, "expires_in": 3600, "token_type": "Bearer"})


async def models(request: Request) -> Response:
    refused = _refusal(request)
    if refused is not None:
        return refused
    model = {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}
    return _json({"models": [model]})


async def requests_log(request: Request) -> Response:
    if request.method == "DELETE":
        REQUESTS.clear()
    return _json(list(REQUESTS))


app = Starlette(
    routes=[
        Route("/v1beta/models/{target:path}", generate, methods=["POST"]),
        Route("/v1beta/models", models, methods=["GET"]),
        Route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target:path}",
            vertex_generate,
            methods=["POST"],
        ),
        Route("/token", token, methods=["POST"]),
        Route("/_requests", requests_log, methods=["GET", "DELETE"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=None, help="the only API key accepted")
    args = parser.parse_args()
    OPTIONS.key = args.key
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
