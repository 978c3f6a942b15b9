"""Who may call the Agents API: API keys and, when configured, OIDC bearer tokens.

A bearer value starting `sk-` is an API key; anything else is tried as a JWT when
`auth.oidc.api.enabled` is set (and is an invalid API key otherwise).
"""

from __future__ import annotations

from agenthost.auth.api_keys import KEY_PREFIX, KeyAuthenticator
from agenthost.auth.oidc_tokens import TokenAuthenticator
from agenthost.auth.principal import Principal


class CallerAuthenticator:
    def __init__(self, keys: KeyAuthenticator, tokens: TokenAuthenticator | None) -> None:
        self._keys = keys
        self._tokens = tokens
        if tokens is not None:
            # A disabled user or a new role reaches cached token users as it does keys.
            keys.on_user_dropped = tokens.drop

    async def authenticate(self, bearer: str | None) -> Principal:
        if bearer and self._tokens is not None and not bearer.startswith(KEY_PREFIX):
            return await self._tokens.authenticate(bearer)
        return await self._keys.authenticate(bearer)
