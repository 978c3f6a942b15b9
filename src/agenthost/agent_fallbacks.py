"""An agent's fallbacks: `PROVIDER:MODEL[,PROVIDER:MODEL]`, parsed and checked against
the configuration the same way the CLI and the web form check the primary."""

from __future__ import annotations

from collections.abc import Iterable

from agenthost import text_bounds
from agenthost.errors import InvalidRequest
from agenthost.settings import Settings

MAX_FALLBACKS = 5  # each one may cost the caller a timeout before the next is tried


class InvalidFallbacks(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse(text: str) -> list[str]:
    """The entries of a comma-separated list, each `provider:model` (not yet checked
    against the configuration); an empty text is no fallbacks."""
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if len(entries) > MAX_FALLBACKS:
        raise InvalidFallbacks(f"At most {MAX_FALLBACKS} fallbacks, got {len(entries)}.")
    for entry in entries:
        provider, sep, model = entry.partition(":")
        if not sep or not provider.strip() or not model.strip():
            raise InvalidFallbacks(
                f"{entry!r} is not PROVIDER:MODEL (for example openai:gpt-4o-mini)."
            )
    return [_normal(entry) for entry in entries]


def _normal(entry: str) -> str:
    provider, _, model = entry.partition(":")
    return f"{provider.strip()}:{model.strip()}"


def check(entries: list[str], settings: Settings, primary: tuple[str, str]) -> list[str]:
    """`entries` if each names a configured provider and a model it allows."""
    seen = {f"{primary[0]}:{primary[1]}"}
    for entry in entries:
        provider, _, model = entry.partition(":")
        try:
            text_bounds.check_model(model)
        except InvalidRequest as exc:
            raise InvalidFallbacks(f"{entry!r}: {exc.message}") from None
        if provider in settings.disabled_providers:
            variable = settings.disabled_providers[provider]
            raise InvalidFallbacks(
                f"{entry!r}: provider {provider!r} is disabled (${{{variable}}} is not set)."
            )
        config = settings.providers.get(provider)
        if config is None:
            known = ", ".join(settings.providers)
            raise InvalidFallbacks(f"{entry!r}: provider {provider!r} is not configured ({known}).")
        if config.user_provided:
            raise InvalidFallbacks(
                f"{entry!r}: provider {provider!r} uses each caller's own key; a fallback "
                "must be a provider with a configured key."
            )
        if config.models and model not in config.models:
            raise InvalidFallbacks(
                f"{entry!r}: model {model!r} is not offered by {provider!r} "
                f"(choose one of: {', '.join(config.models)})."
            )
        if entry in seen:
            raise InvalidFallbacks(f"{entry!r} is listed twice (or is the primary).")
        seen.add(entry)
    return entries


def pairs(entries: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Stored entries as (provider, model); a malformed one (never saved by us) is skipped."""
    found = []
    for entry in entries:
        provider, sep, model = str(entry).partition(":")
        if sep and provider and model:
            found.append((provider, model))
    return tuple(found)
