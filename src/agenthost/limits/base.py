"""Rate limits per API key and per user: requests and tokens per minute, concurrent runs.

Windows are fixed minutes (as OpenAI resets its counters), and one `acquire` checks every
scope of a request (its key and its user) before counting anything, so a request refused
by one scope is counted by none. Tokens are counted at admission by estimate and corrected
with the actual usage when the run ends (`release`), which also frees the concurrency slot.
A concurrency slot is a lease with an expiry, so a crashed worker cannot hold it forever.

    RateLimiter                 the interface
    ├── MemoryRateLimiter       one process (limits.memory)
    ├── RedisRateLimiter        every worker and host sharing one Redis (limits.redis)
    └── FallbackRateLimiter     Redis, and the in-process limiter while Redis is down
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from agenthost.errors import RateLimited
from agenthost.observability import metrics
from agenthost.settings import RateLimit

WINDOW_SECONDS = 60


@dataclass(slots=True, frozen=True)
class Scope:
    """One limited subject (`key:<id>` or `user:<id>`) and its configured limits."""

    name: str
    limit: RateLimit

    @property
    def limited(self) -> bool:
        limit = self.limit
        return bool(
            limit.requests_per_minute or limit.tokens_per_minute or limit.concurrent_requests
        )


@dataclass(slots=True, frozen=True)
class ScopeUsage:
    """A scope's counters in the current window, after this request was counted."""

    scope: Scope
    requests: int
    tokens: int


@dataclass(slots=True)
class Lease:
    """What one admitted request holds: its window, counted tokens and concurrency slot."""

    lease_id: str
    scopes: list[Scope]
    window: int
    tokens: int
    reset_seconds: float
    usages: list[ScopeUsage] = field(default_factory=list)
    backend: object | None = None  # the limiter that issued it (for the fallback)

    @property
    def headers(self) -> dict[str, str]:
        """`x-ratelimit-*` of the most restrictive scope, as OpenAI sends them."""
        return ratelimit_headers(self.usages, self.reset_seconds)


class RateLimiter(ABC):
    """Counts requests, tokens and running requests per scope."""

    @abstractmethod
    async def acquire(
        self, scopes: list[Scope], tokens: int, lease_id: str, lease_seconds: float
    ) -> Lease:
        """Count one request of `tokens` estimated tokens in every scope, or raise
        `RateLimited` (counting nothing) when any scope is at a limit."""

    @abstractmethod
    async def release(self, lease: Lease, actual_tokens: int) -> None:
        """Correct the tokens counted for `lease` and free its concurrency slot."""

    async def aclose(self) -> None:
        return None


def refusal(scope: Scope, what: str, retry_after: float) -> RateLimited:
    subject = scope.name.split(":", 1)[0]
    labels = {
        "requests": "requests per minute",
        "tokens": "tokens per minute",
        "concurrent": "concurrent requests",
    }
    owner = "API key" if subject == "key" else "user"
    metrics.RATE_LIMITED.labels(subject).inc()
    return RateLimited(
        f"Rate limit reached for {labels[what]} of this {owner}. Try again in {retry_after:.1f}s.",
        retry_after=retry_after,
        code="rate_limit_exceeded",
    )


def format_reset(seconds: float) -> str:
    """Durations the way OpenAI writes them: `120ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(int(math.ceil(seconds)), 60)
    return f"{minutes}m{rest}s"


def _tightest(usages: list[ScopeUsage], kind: str) -> tuple[int, int] | None:
    """(limit, remaining) of the scope with the least left of `kind`, if any is limited."""
    found: tuple[int, int] | None = None
    for usage in usages:
        limit = getattr(usage.scope.limit, f"{kind}_per_minute")
        if limit:
            remaining = max(0, limit - getattr(usage, kind))
            if found is None or remaining < found[1]:
                found = (limit, remaining)
    return found


def ratelimit_headers(usages: list[ScopeUsage], reset_seconds: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        tightest = _tightest(usages, kind)
        if tightest is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest[0])
            headers[f"x-ratelimit-remaining-{kind}"] = str(tightest[1])
            headers[f"x-ratelimit-reset-{kind}"] = format_reset(reset_seconds)
    return headers
