"""Builds the configured providers by name."""

from __future__ import annotations

from agenthost.errors import ConfigError
from agenthost.providers.base import Provider
from agenthost.settings import ProviderSettings


def build_provider(name: str, config: ProviderSettings) -> Provider:
    # Imported lazily so an unused upstream's SDK costs nothing at start-up.
    if config.type == "openai":
        from agenthost.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(name, config)
    if config.type == "azure_openai":
        from agenthost.providers.azure_openai import AzureOpenAIProvider

        return AzureOpenAIProvider(name, config)
    if config.type == "scripted":
        from agenthost.providers.scripted import ScriptedProvider

        return ScriptedProvider(name, config)
    if config.type == "local":
        from agenthost.providers.local_gguf import LocalGGUFProvider

        return LocalGGUFProvider(name, config)
    if config.type == "anthropic":
        from agenthost.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, config)
    if config.type == "google":
        from agenthost.providers.gemini import GeminiProvider

        return GeminiProvider(name, config)
    if config.type == "bedrock":
        from agenthost.providers.bedrock import BedrockProvider

        return BedrockProvider(name, config)
    raise ConfigError(f"config error: providers.{name}.type: unknown type {config.type!r}")


def _configured(name: str, config: ProviderSettings) -> Provider:
    provider = build_provider(name, config)
    if config.max_output_tokens is not None:
        provider.default_max_output_tokens = config.max_output_tokens
    return provider


def build_providers(configs: dict[str, ProviderSettings]) -> dict[str, Provider]:
    return {name: _configured(name, cfg) for name, cfg in configs.items()}
