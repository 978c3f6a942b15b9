"""Rate limits per API key and per user, in-process or shared through Redis."""

from __future__ import annotations

from agenthost.limits.base import Lease, RateLimiter, Scope
from agenthost.limits.memory import MemoryRateLimiter
from agenthost.settings import LimitSettings

__all__ = ["Lease", "MemoryRateLimiter", "RateLimiter", "Scope", "scopes_for"]


def scopes_for(limits: LimitSettings, user_id: str, key_id: str | None) -> list[Scope]:
    """The limited scopes of a request: its key's and its user's, when configured."""
    scopes = []
    if key_id is not None:
        scopes.append(Scope(f"key:{key_id}", limits.per_key))
    scopes.append(Scope(f"user:{user_id}", limits.per_user))
    return [scope for scope in scopes if scope.limited]
