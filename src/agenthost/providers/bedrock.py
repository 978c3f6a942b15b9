"""AWS Bedrock (`type: bedrock`) through the Converse API: `POST {endpoint}/model/
{modelId}/converse-stream` (a binary AWS event stream) when the caller streams, and
`POST {endpoint}/model/{modelId}/converse` (one JSON answer) when only the whole answer
counts. Requests are SigV4-signed with botocore's signer (`bedrock_auth`); the endpoint is
`https://bedrock-runtime.{region}.amazonaws.com` unless `endpoint_url` says otherwise.

One pooled keep-alive aiohttp session per provider. Throttled (429), overloaded or 5xx
calls, and the same failures sent as an event-stream exception, are retried only before
the first event reaches the caller, within `timeout_seconds`;
`first_token_timeout_seconds` is the socket read timeout. The secret key never leaves
this process: only the signature travels, and error text is masked.

Request building lives in `bedrock_request`, answer decoding in `bedrock_stream`, the
event-stream framing in `eventstream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from urllib.parse import quote

import aiohttp
import orjson
from botocore.credentials import Credentials
from yarl import URL

from agenthost.conversation import ModelRequest
from agenthost.errors import ConfigError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import ModelEvent
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.providers.bedrock_auth import AwsSigner, parse_user_key
from agenthost.providers.bedrock_request import ReasoningMemory, build_body
from agenthost.providers.bedrock_stream import BedrockStream, error_detail, response_kind
from agenthost.providers.eventstream import EventStreamDecoder
from agenthost.providers.openai_compat import env_proxy
from agenthost.providers.retry import stream_with_retries
from agenthost.providers.stream_open import next_chunk, open_stream, pooled_session
from agenthost.providers.upstream_errors import redact, status_error
from agenthost.settings import ProviderSettings

_STREAM_TYPE = "application/vnd.amazon.eventstream"


class BedrockProvider(Provider):
    """Models on Bedrock. `supports_json_schema()` is False: Converse has no schema
    constraint, so json_schema requests are checked by the runtime instead."""

    system = "aws.bedrock"
    bounds_waits = True

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._config = config
        region = config.region or ""
        endpoint = config.endpoint_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        endpoint = endpoint.rstrip("/")
        if URL(endpoint).scheme not in ("http", "https") or not URL(endpoint).host:
            raise ConfigError(
                f"config error: providers.{name}.endpoint_url: {endpoint!r} is not an http(s) URL"
            )
        self._endpoint = endpoint
        static = None
        if config.access_key_id and config.secret_access_key:
            token = config.session_token.get_secret_value() if config.session_token else None
            secret = config.secret_access_key.get_secret_value()
            static = Credentials(config.access_key_id, secret, token)
        self._secrets = [s for s in (static.secret_key, static.token) if s] if static else []
        self._signer = AwsSigner(name, region, static)
        self._proxy, proxy_auth = env_proxy(URL(endpoint))
        tunnelled = URL(endpoint).scheme == "https"
        self._proxy_headers = proxy_auth if tunnelled and proxy_auth else None
        self._extra_headers = dict(config.headers)
        if not tunnelled:
            self._extra_headers.update(proxy_auth)
        self._session: aiohttp.ClientSession | None = None
        self._reasoning = ReasoningMemory()

    def supports_json_schema(self) -> bool:
        return False

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = pooled_session(self._config)
        return self._session

    def _url_for(self, model: str, streamed: bool) -> URL:
        # Model ids and ARNs hold ':' and '/': encoded once here, and sent as encoded
        # (yarl would otherwise decode them and the signature would not match).
        action = "converse-stream" if streamed else "converse"
        return URL(f"{self._endpoint}/model/{quote(model, safe='')}/{action}", encoded=True)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = orjson.dumps(build_body(request, self._reasoning))
        url = self._url_for(request.model, request.streamed)
        caller = parse_user_key(self.name, request.api_key) if request.api_key else None
        async with aclosing(
            stream_with_retries(
                lambda deadline: self._attempt(url, body, deadline, request, caller),
                provider=self.name,
                max_retries=self._config.max_retries,
                timeout_seconds=self._config.timeout_seconds,
                deadline=request.deadline,
            )
        ) as events:
            async for event in events:
                yield event

    async def _attempt(
        self,
        url: URL,
        body: bytes,
        deadline: float,
        request: ModelRequest,
        caller: Credentials | None,
    ) -> AsyncGenerator[ModelEvent, None]:
        extra = [s for s in (caller.secret_key, caller.token) if s] if caller else []
        state = BedrockStream(self.name, tuple(self._secrets + extra))
        redactor = self._redactor(extra)
        # Leaving this block (the caller went away) closes the response: the upstream
        # connection is dropped, which cancels the generation.
        async with AsyncExitStack() as stack:
            headers = await self._signed(url, body, request.streamed, deadline, caller)
            if not request.streamed:
                for event in await self._whole(url, body, headers, deadline, state, redactor):
                    yield event
                self._remember(state)
                for event in state.end(request.model):
                    yield event
                return
            response = await open_stream(
                stack,
                self._client(),
                url,
                body=body,
                headers=headers,
                deadline=deadline,
                provider=self.name,
                redact=redactor,
                status_error=lambda status, content: self._status_error(
                    status, content, response_kind(status), redactor
                ),
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            )
            async for event in self._events(response, deadline, state, redactor):
                yield event
        self._remember(state)
        for event in state.end(request.model):
            yield event

    def _remember(self, state: BedrockStream) -> None:
        signed = state.signed_reasoning()
        if signed is not None and state.call_ids:
            self._reasoning.remember(state.call_ids[0], *signed)

    async def _events(
        self,
        response: aiohttp.ClientResponse,
        deadline: float,
        state: BedrockStream,
        redactor: _Redactor,
    ) -> AsyncGenerator[ModelEvent, None]:
        decoder = EventStreamDecoder()
        emitted = False
        while True:
            chunk = await self._next_chunk(response, deadline)
            if chunk is None:
                break
            for message in decoder.feed(chunk):
                for event in state.feed_message(message):
                    emitted = True
                    yield event
            if state.stopped and state.raw_usage is not None:
                break  # metadata (usage) is the last event
        if not state.stopped:
            # Before any output a broken stream is worth a retry; after, it is cut.
            if not emitted:
                raise UpstreamUnavailable(f"upstream {self.name} closed before any output")
            raise ProviderError(f"upstream {self.name} stream ended early (no messageStop)")

    async def _whole(
        self,
        url: URL,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
        state: BedrockStream,
        redactor: _Redactor,
    ) -> list[ModelEvent]:
        try:
            async with asyncio.timeout_at(deadline):
                post = self._client().post(
                    url,
                    data=body,
                    headers=headers,
                    proxy=self._proxy,
                    proxy_headers=self._proxy_headers,
                )
                async with post as response:
                    content = await response.read()
                    status = response.status
                    kind = response.headers.get("x-amzn-ErrorType")
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            reason = redactor(str(exc) or type(exc).__name__)
            raise UpstreamUnavailable(f"cannot reach upstream {self.name}: {reason}") from exc
        if status >= 400:
            raise self._status_error(status, content, kind or response_kind(status), redactor)
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"upstream {self.name} sent a non-JSON answer") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"upstream {self.name} sent a non-object answer")
        return state.whole(data)

    async def _signed(
        self,
        url: URL,
        body: bytes,
        streamed: bool,
        deadline: float,
        caller: Credentials | None,
    ) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": _STREAM_TYPE if streamed else "application/json",
            **self._extra_headers,
        }
        if caller is not None:  # a user-provided provider: the caller's own keys
            creds = caller.get_frozen_credentials()
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    creds = await self._signer.credentials()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"upstream {self.name} credentials timed out") from exc
        return self._signer.sign(url, body, headers, creds)

    async def _next_chunk(self, response: aiohttp.ClientResponse, deadline: float) -> bytes | None:
        return await next_chunk(response, deadline, self.name)

    def _status_error(
        self, status: int, content: bytes, kind: str | None, redactor: _Redactor
    ) -> ProviderError:
        return status_error(self.name, status, redactor(error_detail(content, kind)))

    def _redactor(self, extra: list[str]) -> _Redactor:
        return _Redactor(self._secrets + extra)

    async def health(self) -> ProviderHealth:
        # The runtime endpoint lists no models: resolvable credentials are the check.
        if self._config.user_provided:
            return ProviderHealth(ok=True, detail="ok (each caller's own keys)")
        try:
            await self._signer.credentials()
        except ProviderError as exc:
            return ProviderHealth(ok=False, detail=exc.message[:200])
        return ProviderHealth(ok=True, detail="ok")

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _Redactor:
    """Masks the secret key and session token (and anything key-like) in error text."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text, None)
