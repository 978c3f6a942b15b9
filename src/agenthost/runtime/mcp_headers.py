"""Placeholders in the header values of streamable HTTP MCP servers.

`{user.id}` and `{user.email}` become the calling user's; `{secret.NAME}` becomes the
calling user's secret NAME (set on the Settings page or with `agenthost secrets set`);
`{user.oidc_token}` becomes the caller's OIDC bearer token, for servers that act as the
user at the same identity provider. A server with any of them gets one connection per
user. A referenced secret the user has not set, or a token placeholder on a call made
with an API key, fails the request closed (400 `missing_secret` / `oidc_token_required`):
a server is never called with an empty credential. This module does not import the MCP
SDK, so the request path can ask which secrets an agent needs without loading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from agenthost.errors import ConfigError, InvalidRequest, UpstreamUnavailable
from agenthost.runtime.tools import Caller
from agenthost.settings import McpServerSettings

USER_FIELD = re.compile(r"\{user\.(id|email|oidc_token)\}")
TOKEN_FIELD = "{user.oidc_token}"
SECRET_FIELD = re.compile(r"\{secret\.([A-Za-z0-9_]{1,64})\}")
_ANY_SECRET = re.compile(r"\{secret\.([^{}]*)\}")
_PLACEHOLDER = re.compile(f"{USER_FIELD.pattern}|{SECRET_FIELD.pattern}")


def check_placeholders(server: str, config: McpServerSettings) -> None:
    """Refuse `{secret.…}` placeholders whose name no secret could have."""
    for header, value in config.headers.items():
        for match in _ANY_SECRET.finditer(value):
            if not SECRET_FIELD.fullmatch(match.group(0)):
                raise ConfigError(
                    f"config error: mcp_servers.{server}.headers.{header}: "
                    f"'{match.group(0)}' is not a valid secret placeholder "
                    "(names have 1 to 64 letters, digits or underscores)"
                )


def is_per_user(config: McpServerSettings) -> bool:
    """Whether the server's headers depend on the calling user."""
    return config.transport == "streamable_http" and any(
        _PLACEHOLDER.search(value) for value in config.headers.values()
    )


def secrets_of(config: McpServerSettings) -> list[str]:
    """The secret names the server's headers reference, in order, without repeats."""
    if config.transport != "streamable_http":
        return []
    names = (m.group(1) for v in config.headers.values() for m in SECRET_FIELD.finditer(v))
    return list(dict.fromkeys(names))


def needed_secrets(
    servers: Iterable[str], configs: Mapping[str, McpServerSettings]
) -> dict[str, list[str]]:
    """For each of `servers` whose headers reference secrets: the names it needs."""
    needed: dict[str, list[str]] = {}
    for server in dict.fromkeys(servers):
        config = configs.get(server)
        names = secrets_of(config) if config is not None else []
        if names:
            needed[server] = names
    return needed


def servers_by_secret(
    configs: Mapping[str, McpServerSettings], exclude: Iterable[str] = ()
) -> dict[str, list[str]]:
    """Every secret name the configured servers reference (but `exclude`), with its servers."""
    skip = set(exclude)
    found: dict[str, list[str]] = {}
    for server, config in configs.items():
        for name in secrets_of(config):
            if name not in skip:
                found.setdefault(name, []).append(server)
    return found


def token_servers(servers: Iterable[str], configs: Mapping[str, McpServerSettings]) -> list[str]:
    """Which of `servers` pass the caller's OIDC token on (`{user.oidc_token}`)."""
    return [
        server
        for server in dict.fromkeys(servers)
        if (config := configs.get(server)) is not None
        and config.transport == "streamable_http"
        and any(TOKEN_FIELD in value for value in config.headers.values())
    ]


def token_required(server: str) -> InvalidRequest:
    return InvalidRequest(
        f"MCP server '{server}' of this agent acts as you with your identity provider's "
        "token: call with an OIDC bearer token instead of an API key.",
        code="oidc_token_required",
    )


def missing_secret(server: str, name: str) -> InvalidRequest:
    return InvalidRequest(
        f"MCP server '{server}' of this agent needs your secret '{name}', which is not set. "
        "Set it on the Settings page of the web interface (or ask an admin to run "
        "`agenthost secrets set`) and try again.",
        code="missing_secret",
    )


def require_secrets(needed: Mapping[str, Iterable[str]], secrets: Mapping[str, str]) -> None:
    """Raise `missing_secret` for the first needed secret the user has not set."""
    for server, names in needed.items():
        for name in names:
            if name not in secrets:
                raise missing_secret(server, name)


def render_headers(
    server: str, headers: Mapping[str, str], caller: Caller | None
) -> dict[str, str]:
    """The headers with every placeholder replaced by the calling user's value."""

    def field(match: re.Match[str]) -> str:
        if caller is None:
            raise UpstreamUnavailable(
                f"MCP server '{server}' needs the calling user's identity or secrets"
            )
        user_field, secret_name = match.group(1), match.group(2)
        if user_field == "oidc_token":
            if not caller.oidc_token:
                raise token_required(server)
            return caller.oidc_token
        if secret_name is None:
            return caller.user_id if user_field == "id" else caller.email
        value = caller.secrets.get(secret_name)
        if not value:
            raise missing_secret(server, secret_name)
        return value

    return {key: _PLACEHOLDER.sub(field, value) for key, value in headers.items()}
