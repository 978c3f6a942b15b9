"""Streamed POSTs to an upstream (aiohttp), shared by the providers that speak HTTP
themselves: one pooled session per provider, opening the stream (an error status or a
JSON body where a stream was asked for is read whole, it is small, and raised as our
error; timeouts and broken connections become `UpstreamTimeout` / `UpstreamUnavailable`,
with secrets masked), and reading it chunk by chunk within the call's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import aiohttp
from yarl import URL

from agenthost.errors import AgentHostError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.providers.openai_compat_stream import error_detail
from agenthost.settings import ProviderSettings

MAX_CONNECTIONS = 1024
KEEPALIVE_SECONDS = 30.0


def pooled_session(config: ProviderSettings) -> aiohttp.ClientSession:
    """A provider's keep-alive session (made on first use: it belongs to the event loop
    that creates it). Connecting is short; a read waits for the first token, then any gap."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=config.connect_timeout_seconds,
            sock_read=config.first_token_timeout_seconds,
        ),
    )


async def next_chunk(
    response: aiohttp.ClientResponse, deadline: float, provider: str, read_timeout: float = 0.0
) -> bytes | None:
    """The next body bytes, or None at the end or when the connection broke (after what
    arrived before the break: the caller judges a stream that lacks its end)."""
    try:
        # While the deadline is further away than the socket read timeout, that timeout
        # fires first, so the per-chunk deadline scope (a timer per token) is skipped.
        if read_timeout and deadline - asyncio.get_running_loop().time() > read_timeout:
            chunk = await response.content.readany()
        else:
            async with asyncio.timeout_at(deadline):
                chunk = await response.content.readany()
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {provider} stopped sending in time") from exc
    except aiohttp.ClientError:
        return arrived_before_break(response.content) or None
    return chunk or None


def arrived_before_break(reader: aiohttp.StreamReader) -> bytes:
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


async def open_stream(
    stack: AsyncExitStack,
    session: aiohttp.ClientSession,
    url: str | URL,
    *,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    provider: str,
    redact: Callable[[str], str],
    status_error: Callable[[int, bytes], AgentHostError],
    proxy: URL | None = None,
    proxy_headers: dict[str, str] | None = None,
) -> aiohttp.ClientResponse:
    try:
        async with asyncio.timeout_at(deadline):
            post = session.post(
                url, data=body, headers=headers, proxy=proxy, proxy_headers=proxy_headers
            )
            response = await stack.enter_async_context(post)
            failed = response.status >= 400
            not_streaming = "json" in response.headers.get("content-type", "")
            content = await response.read() if failed or not_streaming else b""
    except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
        raise UpstreamTimeout(f"upstream {provider} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        reason = redact(str(exc) or type(exc).__name__)
        raise UpstreamUnavailable(f"cannot reach upstream {provider}: {reason}") from exc
    if failed:
        raise status_error(response.status, content)
    if not_streaming:
        raise ProviderError(f"upstream {provider} did not stream: {redact(error_detail(content))}")
    return response
