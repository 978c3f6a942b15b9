"""Azure OpenAI: the OpenAI wire format at Azure's addresses.

Each model is a deployment: a call goes to
`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…` with the key
in an `api-key` header. `deployments` maps the model names agents use to deployment names
(a model not listed is taken as its own deployment name). Azure's content filter refusing
a prompt (HTTP 400, code `content_filter`) is the caller's 400 `content_filter` naming
what was filtered; an answer it cuts short ends with `finish_reason: content_filter`
like any other upstream's. With `auth: entra` each call carries a Microsoft Entra ID
bearer token instead of the key (azure_entra.py).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from agenthost.errors import AgentHostError, ConfigError, InvalidRequest
from agenthost.providers.azure_entra import EntraTokens
from agenthost.providers.base import ProviderHealth
from agenthost.providers.openai_compat import OpenAICompatProvider
from agenthost.settings import ProviderSettings

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAICompatProvider):
    system = "azure.ai.openai"

    def __init__(self, name: str, config: ProviderSettings) -> None:
        endpoint = (config.endpoint or "").rstrip("/")
        if URL(endpoint).scheme not in ("http", "https") or not URL(endpoint).host:
            raise ConfigError(
                f"config error: providers.{name}.endpoint: an https URL like "
                "https://NAME.openai.azure.com is required"
            )
        key = config.api_key.get_secret_value() if config.api_key else None
        # The parent builds the pooled session, proxy and headers for the /openai root;
        # the key travels as `api-key`, not as a bearer token.
        super().__init__(name, config.model_copy(update={"base_url": endpoint + "/openai"}))
        self._headers.pop("Authorization", None)
        if key:
            self._api_key = key
            self._headers["api-key"] = key
        self._query = "?" + urlencode({"api-version": config.api_version or DEFAULT_API_VERSION})
        self._root = endpoint + "/openai"
        self._deployments = dict(config.deployments)
        self._models_url = f"{self._root}/models{self._query}"
        self._entra = EntraTokens(name, config) if config.auth == "entra" else None

    async def _open(
        self, stack: AsyncExitStack, url: str, headers: dict[str, str], body: bytes, deadline: float
    ) -> aiohttp.ClientResponse:
        if self._entra is not None:  # fetched per attempt: a retry never sends a stale one
            headers = {**headers, "Authorization": await self._entra.authorization()}
        return await super()._open(stack, url, headers, body, deadline)

    async def health(self) -> ProviderHealth:
        if self._entra is None:
            return await super().health()
        try:
            await self._entra.authorization()
        except Exception as exc:  # health reports, it never raises
            return ProviderHealth(ok=False, detail=f"no Entra ID token: {type(exc).__name__}")
        return ProviderHealth(ok=True, detail="Entra ID token ready")

    async def aclose(self) -> None:
        if self._entra is not None:
            await self._entra.aclose()
        await super().aclose()

    def _headers_with(self, api_key: str) -> dict[str, str]:
        return {**self._headers, "api-key": api_key}

    def _url_for(self, model: str) -> str:
        deployment = quote(self._deployments.get(model, model), safe="")
        return f"{self._root}/deployments/{deployment}/chat/completions{self._query}"

    def _status_error(self, status: int, content: bytes) -> AgentHostError:
        if status == 401 and self._entra is not None:
            self._entra.forget()  # revoked or expired early: the next call fetches anew
        filtered = _content_filter(content) if status == 400 else None
        if filtered is not None:
            return InvalidRequest(
                f"Azure OpenAI's content filter refused the prompt{filtered}.",
                code="content_filter",
            )
        return super()._status_error(status, content)


def _content_filter(content: bytes) -> str | None:
    """`""` or `" (hate: medium)"` when the body is Azure's content-filter refusal."""
    try:
        error = orjson.loads(content).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(error, dict) or error.get("code") != "content_filter":
        return None
    inner = error.get("innererror") or {}
    results: Any = inner.get("content_filter_result") if isinstance(inner, dict) else None
    hits = [
        f"{category}: {verdict.get('severity', 'filtered')}"
        for category, verdict in (results or {}).items()
        if isinstance(verdict, dict) and verdict.get("filtered")
    ]
    return f" ({', '.join(hits)})" if hits else ""
