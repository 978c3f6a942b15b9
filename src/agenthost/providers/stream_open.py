"""Opening a streamed POST to an upstream (aiohttp), shared by the providers that speak
HTTP themselves: an error status or a JSON body where a stream was asked for is read
whole (it is small) and raised as our error; timeouts and broken connections become
`UpstreamTimeout` / `UpstreamUnavailable`, with secrets masked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import aiohttp
from yarl import URL

from agenthost.errors import AgentHostError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.providers.openai_compat_stream import error_detail


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
