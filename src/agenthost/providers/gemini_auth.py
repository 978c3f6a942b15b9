"""Vertex AI credentials for the Gemini provider: OAuth bearer tokens from google-auth.

A service-account key file, or else Application Default Credentials (gcloud's, the
metadata server's, workload identity). google-auth refreshes through `requests`, which
blocks, so a refresh runs in a worker thread; one lock makes concurrent calls share it.
google-auth counts a token expired a few minutes before it lapses, so a call never
carries one about to run out. google-auth is optional (`agenthost[google]`): imported
only when a provider has `vertex` settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agenthost.errors import ConfigError, ProviderError, UpstreamUnavailable
from agenthost.providers.upstream_errors import redact
from agenthost.settings import VertexSettings

SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def _load(provider: str, settings: VertexSettings) -> Any:
    where = f"config error: providers.{provider}.vertex"
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account
    except ImportError as exc:
        raise ConfigError(f"{where} needs google-auth: pip install 'agenthost[google]'") from exc
    try:
        if settings.credentials_file:
            # Any: google-auth's hints are partial, and it may be absent when type-checking.
            key_file: Any = service_account.Credentials
            return key_file.from_service_account_file(settings.credentials_file, scopes=[SCOPE])
        credentials, _ = google.auth.default(scopes=[SCOPE])
        return credentials
    except (OSError, ValueError, KeyError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:300]
        raise ConfigError(
            f"{where}.credentials_file: not a service-account key ({reason})"
        ) from exc
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"{where}: no credentials_file and no Application Default Credentials found"
        ) from exc


class VertexCredentials:
    """The `Authorization` header for Vertex AI calls, refreshed when needed."""

    def __init__(self, provider: str, settings: VertexSettings) -> None:
        self._provider = provider
        self._credentials = _load(provider, settings)
        self._transport: Any = None
        self._lock = asyncio.Lock()

    async def authorization(self) -> str:
        async with self._lock:
            if not self._credentials.valid:
                await asyncio.to_thread(self._refresh)
            return f"Bearer {self._credentials.token}"

    def _refresh(self) -> None:
        from google.auth.exceptions import RefreshError, TransportError
        from google.auth.transport.requests import Request

        if self._transport is None:
            self._transport = Request()  # one pooled requests session
        where = f"upstream {self._provider}"
        try:
            self._credentials.refresh(self._transport)
        except RefreshError as exc:
            detail = redact(str(exc), None)
            raise ProviderError(f"{where}: credentials rejected ({detail})", status=401) from exc
        except TransportError as exc:
            detail = redact(str(exc), None)
            raise UpstreamUnavailable(f"cannot reach {where}'s token service: {detail}") from exc

    def close(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            transport.session.close()
