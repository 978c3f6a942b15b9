"""Who is calling: the user behind an API key (or a browser session)."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def key_allows(self, agent_id: str) -> bool:
        return self.agent_scope is None or agent_id in self.agent_scope
