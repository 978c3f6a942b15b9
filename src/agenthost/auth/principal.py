"""Who is calling: the user behind an API key, an OIDC bearer token or a browser session."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Principal:
    user_id: str
    email: str
    role: str
    key_id: str | None = None
    agent_scope: tuple[str, ...] | None = None
    # The key's spending cap in credits per `key_budget_period` (day | week | month |
    # None: ever); None when the key has no budget.
    key_max_credits: int | None = None
    key_budget_period: str | None = None
    # A bearer-token caller: the identity provider's subject, and the token itself for
    # MCP servers that act as the user (`{user.oidc_token}`); never shown in a repr.
    token_subject: str | None = None
    bearer_token: str | None = field(default=None, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def limit_key(self) -> str | None:
        """What per-key rate limits count: the API key, or the token's subject."""
        if self.key_id is not None:
            return self.key_id
        return f"oidc:{self.token_subject}" if self.token_subject is not None else None

    def key_allows(self, agent_id: str) -> bool:
        return self.agent_scope is None or agent_id in self.agent_scope
