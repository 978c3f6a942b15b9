"""Any OpenAI-compatible `/chat/completions` upstream: OpenAI, Ollama, vLLM, OpenRouter…

The gateway's hot path: one pooled keep-alive aiohttp session per provider (its HTTP
parser is C, and taking a pooled connection does not scan the whole pool the way httpx's
does, which profiles showed as the largest cost of a proxied request). SSE lines are split
by hand and parsed with orjson into plain dicts (no wire models per chunk). Timeouts:
`first_token_timeout_seconds` is the socket read timeout, so it bounds the wait for the
first byte and then any silent gap; `timeout_seconds` bounds the whole call, retries
included.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from agenthost.conversation import (
    AudioPart,
    ContentPart,
    ImagePart,
    Message,
    ModelRequest,
    ResponseFormat,
    TextPart,
    ToolSpec,
)
from agenthost.errors import ConfigError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import (
    Finish,
    FinishReason,
    ModelEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.providers.retry import stream_with_retries
from agenthost.providers.upstream_errors import redact, status_error
from agenthost.settings import ProviderSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}
_HEALTH_TIMEOUT = 5.0
_DRAIN_TIMEOUT = 1.0
_MAX_DETAIL = 500
# Enough pooled connections for hundreds of concurrent streams per upstream.
_MAX_CONNECTIONS = 1024
_KEEPALIVE_SECONDS = 30.0

log = logging.getLogger(__name__)


# --- request: ModelRequest → wire body ------------------------------------------------


def build_body(request: ModelRequest) -> dict[str, Any]:
    """The `/chat/completions` body for `request`, always streaming with usage."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.tools:
        _add_tools(body, request)
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_output_tokens,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "reasoning_effort": request.reasoning_effort,
        "user": request.user,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if request.stop:
        body["stop"] = list(request.stop)
    response_format = _response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    body.update(request.extra)
    # Streaming with usage is how we bill; `extra` may add stream options, not remove these.
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    body["stream"] = True
    body["stream_options"] = {**options, "include_usage": True}
    return body


def _message(message: Message) -> dict[str, Any]:
    # `developer` is sent as `system`: OpenAI treats them alike, many other servers
    # (Ollama, older vLLM) reject the newer role.
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role}
    if role == "user":
        out["content"] = _user_content(message.content)
    elif role == "assistant":
        text = message.text()
        out["content"] = text if text or not message.tool_calls else None
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": _function(c.name, c.arguments)}
                for c in message.tool_calls
            ]
    else:
        out["content"] = message.text()
    if role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
    elif message.name:
        out["name"] = message.name
    return out


def _user_content(parts: list[ContentPart]) -> str | list[dict[str, Any]]:
    # Plain strings are understood by every server; parts only when there is media.
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return [_part(p) for p in parts]


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    file = {"filename": part.filename, "file_data": part.file_data, "file_id": part.file_id}
    file["file_url"] = part.file_url
    return {"type": "file", "file": {k: v for k, v in file.items() if v is not None}}


def _add_tools(body: dict[str, Any], request: ModelRequest) -> None:
    choice = request.tool_choice
    tools: list[ToolSpec] = request.tools
    wire_choice: str | dict[str, Any] = choice.mode
    if choice.mode != "none" and choice.allowed:
        if choice.mode == "required" and len(choice.allowed) == 1:
            wire_choice = {"type": "function", "function": {"name": choice.allowed[0]}}
        else:
            # Chat Completions has no "allowed tools" list: offer only those.
            allowed = set(choice.allowed)
            tools = [t for t in tools if t.name in allowed]
    if not tools:
        return
    body["tools"] = [
        {
            "type": "function",
            "function": _without_none(
                name=t.name, description=t.description, parameters=t.parameters, strict=t.strict
            ),
        }
        for t in tools
    ]
    body["tool_choice"] = wire_choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls


def _response_format(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    name = fmt.name or "response"  # required by OpenAI
    schema = _without_none(
        name=name, schema=fmt.schema, strict=fmt.strict, description=fmt.description
    )
    return {"type": "json_schema", "json_schema": schema}


def _function(name: str, arguments: str) -> dict[str, str]:
    return {"name": name, "arguments": arguments}


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- response: SSE chunks → model events ----------------------------------------------


@dataclass(slots=True)
class _Call:
    index: int
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _StreamState:
    """What one upstream stream has said so far; `feed_line` appends events to `out`."""

    calls: dict[Any, _Call] = field(default_factory=dict)  # by the upstream's index
    last_key: Any = 0
    open_calls: list[_Call] = field(default_factory=list)
    call_count: int = 0
    finish: FinishReason | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    done: bool = False

    def feed_lines(self, lines: list[bytes], out: list[ModelEvent]) -> ProviderError | None:
        """Feed lines until `[DONE]`; a failure is returned, with the events before it."""
        for line in lines:
            try:
                self.feed_line(line, out)
            except ProviderError as exc:
                return exc
            if self.done:
                break
        return None

    def feed_line(self, line: bytes, out: list[ModelEvent]) -> None:
        # Comments (`: keep-alive`), `event:`/`id:` fields and blank lines carry nothing.
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        if not payload:
            return
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"upstream sent a non-JSON event: {payload[:80]!r}") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"upstream sent a non-object event: {payload[:80]!r}")
        self.feed(data, out)

    def feed(self, data: dict[str, Any], out: list[ModelEvent]) -> None:
        error = data.get("error")
        if error is not None:
            raise ProviderError(f"upstream failed mid-stream: {_error_detail(error)}")
        choices = data.get("choices")
        if choices:
            self._choice(choices[0], out)
        usage = data.get("usage")
        if isinstance(usage, dict) and usage:
            # Some servers repeat cumulative usage on every chunk: keep the last.
            self.usage = usage
        elif usage:
            log.warning("upstream defect: %s sent usage that is not an object", self.model)
            self.model = data.get("model") or self.model
        elif self.model is None:
            self.model = data.get("model")

    def _choice(self, choice: dict[str, Any], out: list[ModelEvent]) -> None:
        delta = choice.get("delta")
        if delta:
            # vLLM sends both fields with the same text; OpenRouter only `reasoning`.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content and isinstance(content, str):
                out.append(TextDelta(content))
            refusal = delta.get("refusal")
            if refusal and isinstance(refusal, str):
                out.append(TextDelta(refusal))
            tool_calls = delta.get("tool_calls")
            if tool_calls and self.finish is None:
                for item in tool_calls:
                    self._tool_delta(item, out)
        reason = choice.get("finish_reason")
        if reason and self.finish is None:
            self.finish = _FINISH.get(reason, "stop")
            self.close_calls(out)

    def _tool_delta(self, item: dict[str, Any], out: list[ModelEvent]) -> None:
        key = item.get("index")
        if key is None:  # a few servers omit the index: fall back to the id, then the last call
            key = item.get("id") or self.last_key
        self.last_key = key
        function = item.get("function") or {}
        call = self.calls.get(key)
        if call is None:
            # Our index is the call's position in this message, whatever the upstream's was.
            call_id = item.get("id") or f"call_{secrets.token_urlsafe(18)}"
            call = _Call(self.call_count, call_id, function.get("name") or "")
            self.call_count += 1
            self.calls[key] = call
            self.open_calls.append(call)
            out.append(ToolCallStart(call.index, call.call_id, call.name))
        elif not call.name and function.get("name"):
            call.name = function["name"]
        arguments = function.get("arguments")
        if arguments:
            call.parts.append(arguments)
            out.append(ToolCallDelta(call.index, call.call_id, arguments))

    def close_calls(self, out: list[ModelEvent]) -> None:
        for call in self.open_calls:
            out.append(ToolCallEnd(call.index, call.call_id, call.name, "".join(call.parts)))
        self.open_calls.clear()

    def end(self, out: list[ModelEvent]) -> None:
        """The stream ended properly: close calls, report usage, finish exactly once."""
        self.close_calls(out)
        if self.usage is not None:
            out.append(UsageReport(_usage(self.usage), self.model))
        reason = self.finish or "stop"
        # Some servers (older Ollama) say "stop" after tool calls; callers key on tool_calls.
        if reason == "stop" and self.call_count:
            reason = "tool_calls"
        out.append(Finish(reason))


def _as_reported(raw: dict[str, Any], key: str) -> Any:
    """The value as the upstream sent it, None when missing: the run's budget validates
    usage (a missing or unreadable count is charged at its estimate)."""
    return raw.get(key)


def _usage(raw: dict[str, Any]) -> Usage:
    # Values pass as they came: the run's budget validates and clamps them.
    prompt = raw.get("prompt_tokens_details")
    completion = raw.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = completion if isinstance(completion, dict) else {}
    return Usage(
        input_tokens=_as_reported(raw, "prompt_tokens"),
        output_tokens=_as_reported(raw, "completion_tokens"),
        cache_read_tokens=prompt.get("cached_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
    )


def _error_detail(error: Any) -> str:
    """The message inside an upstream error (body bytes or parsed), whatever its shape."""
    if isinstance(error, bytes):
        try:
            error = orjson.loads(raw := error)
        except orjson.JSONDecodeError:  # a proxy's HTML or plain text
            return raw[:_MAX_DETAIL].decode("utf-8", "replace").strip()
    while isinstance(error, dict):  # {"error": {"message": …}}, {"detail": …}, {"message": …}
        inner = error.get("error") or error.get("message") or error.get("detail")
        error = inner if inner is not None else orjson.dumps(error).decode()
    return str(error)[:_MAX_DETAIL]


# --- the provider ---------------------------------------------------------------------


def _arrived_before_break(reader: aiohttp.StreamReader) -> bytes:
    """The bytes still buffered in a reader whose connection broke. aiohttp raises the
    break before handing them over (even from `read_nowait`), so they are taken from
    its buffer directly: a cut stream keeps every token the upstream delivered."""
    take = getattr(reader, "_read_nowait", None)
    if take is None:
        return b""
    try:
        data = take(-1)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def env_proxy(url: URL) -> tuple[URL | None, dict[str, str]]:
    """The proxy HTTP(S)_PROXY / NO_PROXY choose for `url`, and the header carrying its
    credentials.

    Read once per provider: aiohttp's own `trust_env` reads the environment and ~/.netrc
    in a worker thread on every request, two thread hops that cost tens of milliseconds
    under load."""
    if url.host is None or urllib.request.proxy_bypass(url.host):
        return None, {}
    configured = urllib.request.getproxies().get(url.scheme)
    if not configured:
        return None, {}
    proxy = URL(configured)
    auth = aiohttp.BasicAuth.from_url(proxy)
    return proxy.with_user(None), {"Proxy-Authorization": auth.encode()} if auth else {}


def _joined(events: list[ModelEvent]) -> list[ModelEvent]:
    """Neighbouring text (or reasoning) deltas of one read as one delta: the tokens that
    arrived together are relayed as one chunk, encoded and parsed once."""
    if len(events) < 2:
        return events
    joined: list[ModelEvent] = []
    run: list[str] = []  # the texts of a run of deltas of one kind
    kind: type[TextDelta] | type[ReasoningDelta] | None = None
    for event in [*events, None]:
        if kind is not None and type(event) is not kind:
            joined.append(kind("".join(run)))
            run, kind = [], None
        if isinstance(event, TextDelta | ReasoningDelta):
            kind = type(event)
            run.append(event.text)
        elif event is not None:
            joined.append(event)
    return joined


async def _hold_reading(response: aiohttp.ClientResponse, until: float) -> None:
    """Leave the socket unread until `until`: what the upstream sends meanwhile waits in
    the kernel and arrives in the next read, as one batch."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is None:
        return
    # The transport, not aiohttp's protocol: pausing the protocol parks bytes that are
    # already read in its own buffer, and a resumed read would hand over only those.
    transport.pause_reading()
    try:
        await asyncio.sleep(until - asyncio.get_running_loop().time())
    finally:
        if not transport.is_closing():
            transport.resume_reading()


class OpenAICompatProvider(Provider):
    """An OpenAI-compatible upstream behind one pooled HTTP/1.1 keep-alive session.

    `supports_json_schema()` stays True (the base default): the upstream enforces it."""

    system = "openai"

    bounds_waits = True

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._config = config
        base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        if URL(base_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"config error: providers.{name}.base_url: {base_url!r} is not an http(s) URL"
            )
        self._url = base_url + "/chat/completions"
        self._proxy, proxy_auth = env_proxy(URL(base_url))
        # HTTPS is tunnelled: the proxy's credentials go on the CONNECT only, never to the
        # upstream. Plain HTTP goes to the proxy as it is, so they ride on each request.
        tunnelled = URL(base_url).scheme == "https"
        self._proxy_headers = proxy_auth if tunnelled and proxy_auth else None
        self._models_url = base_url + "/models"
        self._api_key = config.api_key.get_secret_value() if config.api_key else None
        self._read_timeout = config.first_token_timeout_seconds
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if not tunnelled:
            headers.update(proxy_auth)
        headers.update(config.headers)
        # Sent with each request, not as the session's defaults: through a plain HTTP
        # proxy aiohttp takes a default Authorization header for the proxy's own.
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that creates it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=_MAX_CONNECTIONS, keepalive_timeout=_KEEPALIVE_SECONDS
                ),
                # Connecting is short; a read waits for the first token, then any gap.
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self._config.connect_timeout_seconds,
                    sock_read=self._config.first_token_timeout_seconds,
                ),
            )
        return self._session

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        async with aclosing(self.stream_batches(request)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    def stream_batches(self, request: ModelRequest) -> AsyncGenerator[list[ModelEvent], None]:
        """The events of each read from the upstream as one batch."""
        body = orjson.dumps(build_body(request))
        # Held well inside the read timeout, which keeps running while the socket waits.
        hold = min(self._config.stream_interval_ms / 1000, self._read_timeout / 4)
        hold = hold if request.streamed else 0.0
        return stream_with_retries(
            lambda deadline: self._attempt(body, deadline, hold),
            max_retries=self._config.max_retries,
            timeout_seconds=self._config.timeout_seconds,
            deadline=request.deadline,
        )

    async def _attempt(
        self, body: bytes, deadline: float, hold: float
    ) -> AsyncGenerator[list[ModelEvent], None]:
        state = _StreamState()
        out: list[ModelEvent] = []
        emitted = False
        async with AsyncExitStack() as stack:
            response = await self._open(stack, body, deadline)
            buffer = b""
            loop = asyncio.get_running_loop()
            while not state.done:
                asked = loop.time()
                chunk = await self._next_chunk(response, deadline)
                arrived = loop.time()
                # At the end, a newline flushes a last line that lacked one.
                lines = (buffer + (b"\n" if chunk is None else chunk)).split(b"\n")
                buffer = lines.pop()
                failure = state.feed_lines(lines, out)
                if out:
                    emitted = True
                    yield _joined(out)
                    out = []
                if failure is not None:
                    raise failure  # after the text that came before it in the same read
                if chunk is None:
                    break
                if hold and emitted and state.finish is None and arrived - asked < hold:
                    # The upstream sends faster than the interval: the next read waits.
                    # (Never before the first output: that would delay the first token.)
                    await _hold_reading(response, min(arrived + hold, deadline))
            if not state.done and state.finish is None:
                # Before any output a broken stream is worth a retry; after, it is incomplete.
                if not emitted:
                    raise UpstreamUnavailable(f"upstream {self.name} closed before any output")
                raise ProviderError(
                    f"upstream {self.name} stream ended early (no finish, no [DONE])"
                )
            state.end(out)
            yield out
            await self._drain(response, deadline)

    async def _open(
        self, stack: AsyncExitStack, body: bytes, deadline: float
    ) -> aiohttp.ClientResponse:
        try:
            async with asyncio.timeout_at(deadline):
                response = await stack.enter_async_context(
                    self._client().post(
                        self._url,
                        data=body,
                        headers=self._headers,
                        proxy=self._proxy,
                        proxy_headers=self._proxy_headers,
                    )
                )
                # An error, or JSON where a stream was asked for: small, read it whole.
                failed = response.status >= 400
                not_streaming = "json" in response.headers.get("content-type", "")
                content = await response.read() if failed or not_streaming else b""
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise UpstreamUnavailable(f"cannot reach upstream {self.name}: {reason}") from exc
        if failed:
            raise self._status_error(response.status, content)
        if not_streaming:
            detail = self._redact(_error_detail(content))
            raise ProviderError(f"upstream {self.name} did not stream: {detail}")
        return response

    async def _next_chunk(self, response: aiohttp.ClientResponse, deadline: float) -> bytes | None:
        """The next body bytes, or None at the end (or when the connection broke)."""
        try:
            # While the deadline is further away than the socket read timeout, that timeout
            # fires first, so the per-chunk deadline scope (a timer per token) is skipped.
            if deadline - asyncio.get_running_loop().time() > self._read_timeout:
                chunk = await response.content.readany()
            else:
                async with asyncio.timeout_at(deadline):
                    chunk = await response.content.readany()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name} stopped sending in time") from exc
        except aiohttp.ClientError:
            # A broken connection: hand over what arrived before the break, then end
            # (judged by the caller: a stream that lacks its end).
            return _arrived_before_break(response.content) or None
        return chunk or None

    async def _drain(self, response: aiohttp.ClientResponse, deadline: float) -> None:
        # Read to the end of the body so the connection goes back to the pool.
        limit = min(deadline, asyncio.get_running_loop().time() + _DRAIN_TIMEOUT)
        try:
            async with asyncio.timeout_at(limit):
                while await response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            pass  # the connection is dropped instead; the answer is already complete

    def _status_error(self, status: int, content: bytes) -> ProviderError:
        return status_error(self.name, status, self._redact(_error_detail(content)))

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    async def health(self) -> ProviderHealth:
        try:
            timeout = aiohttp.ClientTimeout(total=_HEALTH_TIMEOUT)
            get = self._client().get(
                self._models_url,
                headers=self._headers,
                timeout=timeout,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            )
            async with get as response:
                status = response.status
        except Exception as exc:  # health reports, it never raises
            return ProviderHealth(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return ProviderHealth(ok=status == 200, detail="ok" if status == 200 else f"HTTP {status}")

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
