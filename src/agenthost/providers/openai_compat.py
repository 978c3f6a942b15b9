"""Any OpenAI-compatible `/chat/completions` upstream: OpenAI, Ollama, vLLM, OpenRouter…

The gateway's hot path: one pooled keep-alive aiohttp session per provider (its HTTP
parser is C, and taking a pooled connection does not scan the whole pool the way httpx's
does, which profiles showed as the largest cost of a proxied request). SSE lines are split
by hand and parsed with orjson into plain dicts (no wire models per chunk). Timeouts:
`first_token_timeout_seconds` is the socket read timeout, so it bounds the wait for the
first byte and then any silent gap; `timeout_seconds` bounds the whole call, retries
included.

Request building lives in `openai_compat_request`, stream decoding in
`openai_compat_stream`.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing

import aiohttp
import orjson
from yarl import URL

from agenthost.conversation import ModelRequest
from agenthost.errors import (
    AgentHostError,
    ConfigError,
    ProviderError,
    UpstreamUnavailable,
)
from agenthost.events import ModelEvent
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.providers.openai_compat_request import build_body
from agenthost.providers.openai_compat_stream import StreamState, error_detail, joined
from agenthost.providers.retry import stream_with_retries
from agenthost.providers.stream_open import next_chunk, open_stream, pooled_session
from agenthost.providers.upstream_errors import redact, status_error
from agenthost.settings import ProviderSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_HEALTH_TIMEOUT = 5.0
_DRAIN_TIMEOUT = 1.0
# Enough pooled connections for hundreds of concurrent streams per upstream.


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
        if self._session is None:
            self._session = pooled_session(self._config)
        return self._session

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        async with aclosing(self.stream_batches(request)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    def stream_batches(self, request: ModelRequest) -> AsyncGenerator[list[ModelEvent], None]:
        """The events of each read from the upstream as one batch."""
        body = orjson.dumps(build_body(request))
        url = self._url_for(request.model)
        headers = self._headers_with(request.api_key) if request.api_key else self._headers
        # Held well inside the read timeout, which keeps running while the socket waits.
        hold = min(self._config.stream_interval_ms / 1000, self._read_timeout / 4)
        hold = hold if request.streamed else 0.0
        return stream_with_retries(
            lambda deadline: self._attempt(url, headers, body, deadline, hold),
            provider=self.name,
            max_retries=self._config.max_retries,
            timeout_seconds=self._config.timeout_seconds,
            deadline=request.deadline,
        )

    def _url_for(self, model: str) -> str:
        """Where a call for `model` goes (one URL here; Azure has one per deployment)."""
        return self._url

    def _headers_with(self, api_key: str) -> dict[str, str]:
        """The request headers carrying a caller's own key (user-provided providers)."""
        return {**self._headers, "Authorization": f"Bearer {api_key}"}

    async def _attempt(
        self, url: str, headers: dict[str, str], body: bytes, deadline: float, hold: float
    ) -> AsyncGenerator[list[ModelEvent], None]:
        state = StreamState()
        out: list[ModelEvent] = []
        emitted = False
        async with AsyncExitStack() as stack:
            response = await self._open(stack, url, headers, body, deadline)
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
                    yield joined(out)
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
        self, stack: AsyncExitStack, url: str, headers: dict[str, str], body: bytes, deadline: float
    ) -> aiohttp.ClientResponse:
        return await open_stream(
            stack,
            self._client(),
            url,
            body=body,
            headers=headers,
            deadline=deadline,
            provider=self.name,
            redact=self._redact,
            status_error=self._status_error,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
        )

    async def _next_chunk(self, response: aiohttp.ClientResponse, deadline: float) -> bytes | None:
        return await next_chunk(response, deadline, self.name, self._read_timeout)

    async def _drain(self, response: aiohttp.ClientResponse, deadline: float) -> None:
        # Read to the end of the body so the connection goes back to the pool.
        limit = min(deadline, asyncio.get_running_loop().time() + _DRAIN_TIMEOUT)
        try:
            async with asyncio.timeout_at(limit):
                while await response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            pass  # the connection is dropped instead; the answer is already complete

    def _status_error(self, status: int, content: bytes) -> AgentHostError:
        return status_error(self.name, status, self._redact(error_detail(content)))

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
