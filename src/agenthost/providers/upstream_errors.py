"""How an upstream's HTTP failure maps onto our errors, with secrets masked."""

from __future__ import annotations

import re

from agenthost.errors import ProviderError, UpstreamTimeout, UpstreamUnavailable

MAX_DETAIL = 500
# Anything shaped like an API key (ours or the upstream's) is masked in messages.
_KEYLIKE = re.compile(
    r"\b(sk|sk-ant|pk|rk|key)-[A-Za-z0-9_\-*.]{6,}|\b(?-i:AIza)[A-Za-z0-9_\-]{20,}", re.IGNORECASE
)


def redact(text: str, api_key: str | None) -> str:
    """`text` without the provider's key or anything key-like, cut to a sane length."""
    if api_key:
        text = text.replace(api_key, "***")
    return _KEYLIKE.sub("***", text)[:MAX_DETAIL]


def mask_secret(error: ProviderError, secret: str | None) -> None:
    """Mask `secret` (a caller's own provider key, whatever its shape) in `error`."""
    if secret and secret in error.message:
        error.message = error.message.replace(secret, "***")
        error.args = (error.message,)


def status_error(provider: str, status: int, detail: str) -> ProviderError:
    """429, 5xx → unavailable (retryable before the first token); 408 → timeout; the rest
    (bad request, rejected credentials) → a plain upstream error."""
    where = f"upstream {provider} answered HTTP {status}"
    if status in (401, 403):
        return ProviderError(f"{where}: credentials rejected ({detail})", status=status)
    if status == 408:
        return UpstreamTimeout(f"{where}: {detail}", status=status)
    if status == 429 or status >= 500:
        return UpstreamUnavailable(f"{where}: {detail}", status=status)
    return ProviderError(f"{where}: {detail}", status=status)
