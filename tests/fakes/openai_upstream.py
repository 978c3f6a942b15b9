"""A fake OpenAI-compatible upstream, run as its own process by tests and benchmarks.

    python tests/fakes/openai_upstream.py --port 0 [--ttft-ms X --itl-ms Y --tokens N]

prints `READY <port>` once listening. Behaviour is chosen per request by directive lines
in the last user message, so one server serves every test:

    !text SOME TEXT      fixed reply               !tokens N     N-token reply ("tok " * N),
    !call NAME {json}    a tool call (repeatable)                paced by --ttft-ms/--itl-ms
    !reasoning TEXT      reasoning_content first   !cached N     cached prompt tokens
    !http STATUS         that status, error body   !slow MS      sleep before the first byte
    !cut                 close mid-stream          !garbage      a `data: not-json` frame
    !error               an error event mid-stream !nousage      never send usage
    !stall MS            sleep after the first text delta
    !ignorecap           ignore the request's output cap (an upstream that talks on)
    !usage {json}        report this usage object verbatim (an upstream that lies)
    !finish REASON       end with that finish_reason (e.g. content_filter)
    !contentfilter       Azure's content-filter refusal: HTTP 400, code content_filter

Azure OpenAI's addresses are served too: `POST /openai/deployments/{deployment}/chat/
completions?api-version=V` (401 without an `api-key` header, 404 without api-version)
and `GET /openai/models?api-version=V`. After `PUT /_entra {"tenant": T, "client_id": C,
"client_secret": S, "expires_in": N, "accept": [TOKEN, …]}` those addresses want
`Authorization: Bearer` with a token it issued (or one listed in `accept`) instead of a
key, and `POST /{T}/oauth2/v2.0/token` issues tokens the way Microsoft Entra ID's
client-credentials grant does (form body, `scope` for Cognitive Services); `PUT /_entra {}`
turns it off.

Tool calls are made only when the request offers that tool and the last message is not a
tool result; after one it answers "tool said: <tool output>". `max_completion_tokens` (or
`max_tokens`) truncates the reply to that many words with finish_reason "length".
`GET /_requests` lists the last 200 requests (body, headers, outcome); `DELETE` clears.
`PUT /_fault {"status": 503, "slow_ms": 2000}` makes every chat request fail (or wait)
that way whatever its directives, until `PUT /_fault {}`: one upstream of several going
down while the others answer the same prompt (fallback tests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_REPLY = "Hello from fake upstream"
MODEL = "fake-model"
REQUESTS: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
FAULT: dict[str, Any] = {}  # set by PUT /_fault: applies to every chat request
ENTRA: dict[str, Any] = {}  # set by PUT /_entra: Azure addresses want a bearer token
ISSUED: set[str] = set()
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
_WORD = re.compile(r"\s*\S+\s*$|\s*\S+")


@dataclass
class Options:
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    tokens: int | None = None


OPTIONS = Options()


@dataclass
class Plan:
    """What to answer, decided once from the request."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    finish: str = "stop"
    status: int | None = None
    cached: int = 0
    slow_ms: float = 0.0
    stall_ms: float = 0.0
    paced: bool = False
    cut: bool = False
    garbage: bool = False
    error: bool = False
    usage: bool = True
    prompt_tokens: int = 0
    ignore_cap: bool = False
    usage_override: Any = None
    forced_finish: str | None = None


# --- deciding the answer --------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _directives(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    user = [m for m in messages if m.get("role") == "user"]
    text = _text_of(user[-1].get("content")) if user else ""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("!"):
            name, _, rest = line[1:].partition(" ")
            found.append((name, rest.strip()))
    return found


def _pieces(text: str) -> list[str]:
    return _WORD.findall(text)


def make_plan(body: dict[str, Any]) -> Plan:
    messages = body.get("messages") or []
    plan = Plan(prompt_tokens=sum(len(_text_of(m.get("content")).split()) for m in messages))
    text = DEFAULT_REPLY
    if OPTIONS.tokens is not None:
        text, plan.paced = "tok " * OPTIONS.tokens, True
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    for name, rest in _directives(messages):
        if name == "text":
            text, plan.paced = rest, False
        elif name == "tokens":
            text, plan.paced = "tok " * int(rest), True
        elif name == "call":
            tool, _, arguments = rest.partition(" ")
            if tool in offered:
                plan.calls.append((tool, arguments.strip() or "{}"))
        else:
            _flag(plan, name, rest)
    if messages and messages[-1].get("role") == "tool":
        plan.calls = []
        text = "tool said: " + _text_of(messages[-1].get("content"))
    if plan.calls:
        plan.finish = "tool_calls"
    else:
        _set_text(plan, text, body)
    plan.finish = plan.forced_finish or plan.finish
    return plan


def _flag(plan: Plan, name: str, rest: str) -> None:
    if name == "reasoning":
        plan.reasoning = _pieces(rest)
    elif name == "cached":
        plan.cached = int(rest)
    elif name == "http":
        plan.status = int(rest)
    elif name == "slow":
        plan.slow_ms = float(rest)
    elif name == "stall":
        plan.stall_ms = float(rest)
    elif name in ("cut", "garbage", "error"):
        setattr(plan, name, True)
    elif name == "nousage":
        plan.usage = False
    elif name == "ignorecap":
        plan.ignore_cap = True
    elif name == "usage":
        plan.usage_override = orjson.loads(rest)
    elif name == "finish":
        plan.forced_finish = rest
    elif name == "contentfilter":
        plan.status = -400  # Azure's shape of a 400


def _set_text(plan: Plan, text: str, body: dict[str, Any]) -> None:
    plan.text = _pieces(text)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and len(plan.text) > limit and not plan.ignore_cap:
        plan.text = plan.text[:limit]
        plan.finish = "length"


def _usage(plan: Plan) -> Any:
    if plan.usage_override is not None:
        return plan.usage_override
    reasoning = len(plan.reasoning)
    completion = len(plan.text) + reasoning + sum(1 + len(a.split()) for _, a in plan.calls)
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": plan.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": plan.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# --- streaming ------------------------------------------------------------------------


class ChunkStream(Response):
    """An SSE answer written frame by frame (one `send` per frame), watching for the
    client going away so the recorded outcome says "disconnected"."""

    def __init__(self, plan: Plan, body: dict[str, Any], record: dict[str, Any]) -> None:
        super().__init__(media_type="text/event-stream")
        self.plan = plan
        self.record = record
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.base = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model") or MODEL,
            "system_fingerprint": "fp_fake",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
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

    def frame(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
        chunk = {**self.base, "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    async def _produce(self, send: Send) -> bool:
        """Writes the whole answer; False when it stopped on purpose mid-stream."""
        plan = self.plan

        async def emit(data: dict[str, Any] | bytes) -> None:
            raw = data if isinstance(data, bytes) else orjson.dumps(data)
            frame = b"data: " + raw + b"\n\n"
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        await emit(self.frame({"role": "assistant", "content": "", "refusal": None}))
        if plan.garbage:
            await emit(b"not-json")
        for piece in plan.reasoning:
            await emit(self.frame({"reasoning_content": piece}))
        if not await self._text(emit):
            return not plan.cut  # after an error event the body ends properly
        for index, (name, arguments) in enumerate(plan.calls):
            await self._call(emit, index, name, arguments)
        await emit(self.frame({}, plan.finish))
        if self.include_usage and plan.usage:
            await emit({**self.base, "choices": [], "usage": _usage(plan)})
        await emit(b"[DONE]")
        return True

    async def _text(self, emit: Any) -> bool:
        plan = self.plan
        for number, piece in enumerate(plan.text):
            if plan.paced:
                delay = OPTIONS.ttft_ms if number == 0 else OPTIONS.itl_ms
                if delay:
                    await asyncio.sleep(delay / 1000)
            await emit(self.frame({"content": piece}))
            if number == 0 and plan.stall_ms:
                await asyncio.sleep(plan.stall_ms / 1000)
            if number == 1 and (plan.cut or plan.error):
                if plan.error:
                    error = {"message": "fake failure mid-stream", "type": "server_error"}
                    await emit({"error": {**error, "param": None, "code": "fake_failure"}})
                return False
        return True

    async def _call(self, emit: Any, index: int, name: str, arguments: str) -> None:
        call_id = "call_" + secrets.token_hex(8)
        function = {"name": name, "arguments": ""}
        first = {"index": index, "id": call_id, "type": "function", "function": function}
        await emit(self.frame({"tool_calls": [first]}))
        middle = max(1, len(arguments) // 2)
        for part in (arguments[:middle], arguments[middle:]):
            delta = {"index": index, "function": {"arguments": part}}
            await emit(self.frame({"tool_calls": [delta]}))


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --- routes ---------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(status: int, credential: str = "") -> Response:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
    # A refused credential is echoed back, as some upstreams do ("Incorrect API key: …").
    echoed = f": incorrect key {credential}" if status == 401 and credential else ""
    error = {
        "message": f"fake upstream error {status}{echoed}",
        "type": kinds.get(status, "server_error"),
        "param": None,
        "code": f"fake_{status}",
    }
    headers = {"retry-after": "0"} if status == 429 else None
    return _json({"error": error}, status, headers)


async def chat_completions(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400)
    record = {
        "method": request.method,
        "path": request.url.path,
        "headers": dict(request.headers),
        "client": f"{request.client.host}:{request.client.port}" if request.client else None,
        "body": body,
        "received_at": time.time(),
        "outcome": "pending",
    }
    REQUESTS.append(record)
    plan = make_plan(body)
    if FAULT.get("slow_ms"):
        plan.slow_ms = float(FAULT["slow_ms"])
    if FAULT.get("status"):
        plan.status = int(FAULT["status"])
    if plan.slow_ms:
        await asyncio.sleep(plan.slow_ms / 1000)
    if plan.status == -400:
        record["outcome"] = "content_filter"
        return _azure_content_filter()
    if plan.status:
        record["outcome"] = f"http_{plan.status}"
        credential = request.headers.get("api-key") or request.headers.get("authorization", "")
        return _error(plan.status, credential.removeprefix("Bearer "))
    if body.get("stream"):
        return ChunkStream(plan, body, record)
    record["outcome"] = "done"
    return _json(_completion(plan, body))


def _completion(plan: Plan, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.text) or None}
    if plan.reasoning:
        message["reasoning_content"] = "".join(plan.reasoning)
    if plan.calls:
        message["tool_calls"] = [
            {"id": f"call_{secrets.token_hex(8)}", "type": "function", "function": _fn(n, a)}
            for n, a in plan.calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish}
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or MODEL,
        "choices": [choice],
        "usage": _usage(plan) if plan.usage else None,
    }


def _fn(name: str, arguments: str) -> dict[str, str]:
    return {"name": name, "arguments": arguments}


def _azure_content_filter() -> Response:
    verdicts = {
        "hate": {"filtered": True, "severity": "medium"},
        "violence": {"filtered": False, "severity": "safe"},
    }
    error = {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": verdicts,
        },
    }
    return _json({"error": error}, 400)


def _azure_refusal(request: Request) -> Response | None:
    """What Azure answers a request without its api-version or its key."""
    if not request.query_params.get("api-version"):
        return _json({"error": {"code": "404", "message": "Resource not found"}}, 404)
    if ENTRA:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or (token not in ISSUED and token not in ENTRA.get("accept", [])):
            message = "Access denied due to invalid or expired Entra ID token."
            return _json({"error": {"code": "401", "message": message}}, 401)
        return None
    if not request.headers.get("api-key"):
        message = "Access denied due to invalid subscription key or wrong API endpoint."
        return _json({"error": {"code": "401", "message": message}}, 401)
    return None


async def azure_chat_completions(request: Request) -> Response:
    return _azure_refusal(request) or await chat_completions(request)


async def azure_models(request: Request) -> Response:
    return _azure_refusal(request) or await models(request)


async def models(request: Request) -> Response:
    REQUESTS.append({"method": "GET", "path": request.url.path, "headers": dict(request.headers)})
    model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}
    return _json({"object": "list", "data": [model]})


async def requests_log(request: Request) -> Response:
    if request.method == "DELETE":
        REQUESTS.clear()
        return _json({"cleared": True})
    return _json(list(REQUESTS))


async def fault(request: Request) -> Response:
    FAULT.clear()
    FAULT.update(orjson.loads(await request.body() or b"{}"))
    return _json(FAULT)


async def entra(request: Request) -> Response:
    ENTRA.clear()
    ENTRA.update(orjson.loads(await request.body() or b"{}"))
    ISSUED.clear()
    return _json({"enabled": bool(ENTRA)})


def _entra_error(status: int, code: str, description: str) -> Response:
    return _json({"error": code, "error_description": description}, status)


async def entra_token(request: Request) -> Response:
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    shown = {k: v for k, v in form.items() if k != "client_secret"}
    REQUESTS.append({"method": "POST", "path": request.url.path, "body": shown})
    tenant = request.path_params["tenant"]
    if not ENTRA or tenant != ENTRA.get("tenant"):
        return _entra_error(400, "invalid_request", "AADSTS90002: Tenant not found.")
    if form.get("grant_type") != "client_credentials" or form.get("scope") != ENTRA_SCOPE:
        return _entra_error(400, "invalid_request", "AADSTS900144: bad grant_type or scope.")
    if (form.get("client_id"), form.get("client_secret")) != (
        ENTRA.get("client_id"),
        ENTRA.get("client_secret"),
    ):
        return _entra_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
    token = "entra-" + secrets.token_hex(16)
    ISSUED.add(token)
    expires_in = ENTRA.get("expires_in", 3599)
    return _json(
        {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        }
    )


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route(
                "/openai/deployments/{deployment}/chat/completions",
                azure_chat_completions,
                methods=["POST"],
            ),
            Route("/openai/models", azure_models, methods=["GET"]),
            Route("/_requests", requests_log, methods=["GET", "DELETE"]),
            Route("/_fault", fault, methods=["PUT"]),
            Route("/_entra", entra, methods=["PUT"]),
            Route("/{tenant}/oauth2/v2.0/token", entra_token, methods=["POST"]),
        ]
    )


# --- process --------------------------------------------------------------------------


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=None, help="default reply of N tokens")
    args = parser.parse_args(argv)
    OPTIONS.ttft_ms, OPTIONS.itl_ms, OPTIONS.tokens = args.ttft_ms, args.itl_ms, args.tokens
    # Bind ourselves so --port 0 works and the real port can be printed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    config = uvicorn.Config(
        build_app(), log_level="warning", access_log=False, lifespan="off", backlog=2048
    )
    server = uvicorn.Server(config)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(server, sock))


if __name__ == "__main__":
    main()
