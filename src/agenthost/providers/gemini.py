"""Google's Gemini API (`type: google`): `POST {base_url}/models/{model}:streamGenerateContent
?alt=sse`, the key in an `x-goog-api-key` header (never in the URL, so never in a log line
that prints one).

One pooled keep-alive aiohttp session per provider, as for the OpenAI-compatible
upstreams. Calls always stream; refused, overloaded or 5xx calls are retried only before
the first event reaches the caller, within `timeout_seconds`;
`first_token_timeout_seconds` is the socket read timeout. Gemini answers a bad key with
400 `API_KEY_INVALID`, reported here as rejected credentials like a 401.

With `vertex` settings the same calls go to Vertex AI instead:
`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
publishers/google/models/{model}:streamGenerateContent?alt=sse` (`aiplatform.googleapis.com`
for `global`; `base_url` replaces the `https://…/v1` root), with an OAuth bearer token from
`gemini_auth` instead of a key.

Request building lives in `gemini_request`, stream decoding in `gemini_stream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from agenthost.conversation import ModelRequest
from agenthost.errors import ConfigError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import ModelEvent
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.providers.gemini_auth import VertexCredentials
from agenthost.providers.gemini_request import SignatureMemory, build_body
from agenthost.providers.gemini_stream import GeminiStream, error_detail, key_rejected
from agenthost.providers.openai_compat import env_proxy
from agenthost.providers.retry import stream_with_retries
from agenthost.providers.stream_open import next_chunk, open_stream, pooled_session
from agenthost.providers.upstream_errors import redact, status_error
from agenthost.settings import ProviderSettings, VertexSettings

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
_HEALTH_TIMEOUT = 5.0


class GeminiProvider(Provider):
    """Gemini models. `supports_json_schema()` stays True: the schema is sent as
    `responseJsonSchema` and the API constrains the output to it."""

    system = "gcp.gemini"
    bounds_waits = True

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._config = config
        self._vertex: VertexCredentials | None = None
        if config.vertex is not None:
            if config.api_key is not None:
                raise ConfigError(
                    f"config error: providers.{name}: set api_key (Gemini API) or vertex "
                    "(Vertex AI), not both"
                )
            self._vertex = VertexCredentials(name, config.vertex)
        base_url = (config.base_url or _default_base_url(config.vertex)).rstrip("/")
        if URL(base_url).scheme not in ("http", "https") or not URL(base_url).host:
            raise ConfigError(
                f"config error: providers.{name}.base_url: {base_url!r} is not an http(s) URL"
            )
        self._base_url = base_url
        self._models_root = base_url + _vertex_path(config.vertex)
        self._proxy, proxy_auth = env_proxy(URL(base_url))
        tunnelled = URL(base_url).scheme == "https"
        self._proxy_headers = proxy_auth if tunnelled and proxy_auth else None
        self._api_key = config.api_key.get_secret_value() if config.api_key else None
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        if not tunnelled:
            headers.update(proxy_auth)
        headers.update(config.headers)
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self._signatures = SignatureMemory()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = pooled_session(self._config)
        return self._session

    def _url_for(self, model: str) -> str:
        # Agents may name the model as Google lists it ("models/gemini-2.5-flash").
        name = quote(model.removeprefix("models/"), safe="")
        return f"{self._models_root}/models/{name}:streamGenerateContent?alt=sse"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = orjson.dumps(build_body(request, self._signatures))
        url = self._url_for(request.model)
        async with aclosing(
            stream_with_retries(
                lambda deadline: self._attempt(url, body, deadline, request.api_key),
                provider=self.name,
                max_retries=self._config.max_retries,
                timeout_seconds=self._config.timeout_seconds,
                deadline=request.deadline,
            )
        ) as events:
            async for event in events:
                yield event

    async def _attempt(
        self, url: str, body: bytes, deadline: float, caller_key: str | None
    ) -> AsyncGenerator[ModelEvent, None]:
        state = GeminiStream(self.name, caller_key or self._api_key)
        emitted = False
        # Leaving this block (the caller went away) closes the response: the upstream
        # connection is dropped, which cancels the generation.
        async with AsyncExitStack() as stack:
            response = await self._open(stack, url, body, deadline, caller_key)
            buffer = b""
            while True:
                chunk = await self._next_chunk(response, deadline)
                # At the end, a newline flushes a last line that lacked one.
                lines = (buffer + (b"\n" if chunk is None else chunk)).split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    for event in state.feed_line(line.strip()):
                        emitted = True
                        yield event
                if chunk is None:
                    break
            if state.finish is None:
                # Before any output a broken stream is worth a retry; after, it is cut.
                if not emitted:
                    raise UpstreamUnavailable(f"upstream {self.name} closed before any output")
                raise ProviderError(f"upstream {self.name} stream ended early (no finishReason)")
        for call_id, signature in state.signatures.items():
            self._signatures.remember(call_id, signature)
        for event in state.end():
            yield event

    async def _open(
        self,
        stack: AsyncExitStack,
        url: str,
        body: bytes,
        deadline: float,
        caller_key: str | None = None,
    ) -> aiohttp.ClientResponse:
        headers = self._headers
        if caller_key:  # a user-provided provider: the caller's own key
            headers = {**headers, "x-goog-api-key": caller_key}
        if self._vertex is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    token = await self._vertex.authorization()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from exc
            headers = {**headers, "Authorization": token}
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
        return await next_chunk(response, deadline, self.name)

    def _status_error(self, status: int, content: bytes) -> ProviderError:
        if status == 400 and key_rejected(content):
            status = 401
        return status_error(self.name, status, self._redact(error_detail(content)))

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    async def health(self) -> ProviderHealth:
        if self._vertex is not None:
            # Vertex lists no models per project: a valid token is the check.
            try:
                await self._vertex.authorization()
            except ProviderError as exc:
                return ProviderHealth(ok=False, detail=exc.message[:200])
            return ProviderHealth(ok=True, detail="ok")
        try:
            get = self._client().get(
                f"{self._base_url}/models?pageSize=1",
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=_HEALTH_TIMEOUT),
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            )
            async with get as response:
                status = response.status
        except Exception as exc:  # health reports, it never raises
            return ProviderHealth(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return ProviderHealth(ok=status == 200, detail="ok" if status == 200 else f"HTTP {status}")

    async def aclose(self) -> None:
        if self._vertex is not None:
            self._vertex.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _default_base_url(vertex: VertexSettings | None) -> str:
    if vertex is None:
        return DEFAULT_BASE_URL
    host = "aiplatform.googleapis.com"
    if vertex.location != "global":
        host = f"{quote(vertex.location, safe='')}-{host}"
    return f"https://{host}/v1"


def _vertex_path(vertex: VertexSettings | None) -> str:
    if vertex is None:
        return ""
    project, location = (quote(v, safe="") for v in (vertex.project, vertex.location))
    return f"/projects/{project}/locations/{location}/publishers/google"
