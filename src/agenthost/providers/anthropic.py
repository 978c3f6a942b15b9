"""Anthropic's Messages API through the official `anthropic` SDK (`type: anthropic`).

The SDK's own retries are off: like the OpenAI-compatible provider, we retry refused,
overloaded or 5xx calls only before the first event reaches the caller, with backoff,
within `timeout_seconds`. `first_token_timeout_seconds` is the read timeout.
Request building lives in `anthropic_request`, stream decoding in `anthropic_stream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anthropic
import httpx2

from agenthost.conversation import ModelRequest
from agenthost.errors import ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import ModelEvent
from agenthost.providers.anthropic_request import ThinkingMemory, build_body
from agenthost.providers.anthropic_stream import AnthropicStream
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.providers.retry import stream_with_retries
from agenthost.providers.upstream_errors import redact, status_error
from agenthost.settings import ProviderSettings

_EXTRA_BODY = ("temperature", "top_p")


class AnthropicProvider(Provider):
    """Claude models. `supports_json_schema()` is False: json_schema requests get a 400."""

    system = "anthropic"

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._config = config
        self._api_key = config.api_key.get_secret_value() if config.api_key else None
        self._client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=config.base_url,
            timeout=httpx2.Timeout(
                config.timeout_seconds,
                connect=config.connect_timeout_seconds,
                read=config.first_token_timeout_seconds,
            ),
            max_retries=0,
            default_headers=dict(config.headers) or None,
        )
        self._thinking = ThinkingMemory()

    def supports_json_schema(self) -> bool:
        return False

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = build_body(request, self._thinking)
        # A user-provided provider: the caller's own key replaces the configured one.
        headers = {"x-api-key": request.api_key} if request.api_key else None
        async with aclosing(
            stream_with_retries(
                lambda deadline: self._attempt(body, deadline, headers),
                provider=self.name,
                max_retries=self._config.max_retries,
                timeout_seconds=self._config.timeout_seconds,
            )
        ) as events:
            async for event in events:
                yield event

    async def _attempt(
        self, body: dict[str, Any], deadline: float, headers: dict[str, str] | None
    ) -> AsyncGenerator[ModelEvent, None]:
        state = AnthropicStream()
        emitted = False
        # Sampling settings are not parameters of this SDK version; the API still takes them.
        extra = {k: body[k] for k in _EXTRA_BODY if k in body}
        sdk_body = {k: v for k, v in body.items() if k not in _EXTRA_BODY}
        create = self._client.messages.create(
            **sdk_body, stream=True, extra_body=extra or None, extra_headers=headers
        )
        upstream = await self._guard(create, deadline)
        try:
            iterator = upstream.__aiter__()
            while not state.stopped:
                try:
                    event = await self._guard(anext(iterator), deadline)
                except StopAsyncIteration:
                    break
                for out in state.feed(event):
                    emitted = True
                    yield out
            if not state.stopped:
                if not emitted:
                    raise UpstreamUnavailable(f"upstream {self.name} closed before any output")
                raise ProviderError(f"upstream {self.name} stream ended early (no message_stop)")
            if state.calls:
                self._thinking.remember(state.call_ids(), state.thinking_blocks())
            for out in state.end():
                yield out
        finally:
            await upstream.close()

    async def _guard(self, work: Any, deadline: float) -> Any:
        """Await `work` within the call's deadline, mapping SDK errors to ours."""
        try:
            async with asyncio.timeout_at(deadline):
                return await work
        except StopAsyncIteration:
            raise
        except (TimeoutError, anthropic.APITimeoutError) as exc:
            raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from exc
        except anthropic.APIConnectionError as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise UpstreamUnavailable(f"cannot reach upstream {self.name}: {reason}") from exc
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except anthropic.APIError as exc:
            raise ProviderError(f"upstream {self.name} failed: {self._redact(str(exc))}") from exc

    def _status_error(self, exc: anthropic.APIStatusError) -> ProviderError:
        return status_error(self.name, exc.status_code, self._redact(_detail(exc)))

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    async def health(self) -> ProviderHealth:
        try:
            await self._client.models.list(limit=1, timeout=5.0)
        except anthropic.APIStatusError as exc:
            return ProviderHealth(ok=False, detail=f"HTTP {exc.status_code}")
        except Exception as exc:  # health reports, it never raises
            return ProviderHealth(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return ProviderHealth(ok=True, detail="ok")

    async def aclose(self) -> None:
        await self._client.close()


def _detail(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc.message)
