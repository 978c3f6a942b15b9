"""In-process rate limits: correct for one worker; several workers need `redis_url`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agenthost.limits.base import (
    WINDOW_SECONDS,
    Lease,
    RateLimiter,
    Scope,
    ScopeUsage,
    refusal,
)


@dataclass(slots=True)
class _Counters:
    window: int = -1
    requests: int = 0
    tokens: int = 0
    leases: dict[str, float] = field(default_factory=dict)  # lease id → expiry

    def roll(self, window: int, now: float) -> None:
        if self.window != window:
            self.window, self.requests, self.tokens = window, 0, 0
        for lease_id, expiry in list(self.leases.items()):
            if expiry <= now:
                del self.leases[lease_id]


class MemoryRateLimiter(RateLimiter):
    """Fixed one-minute windows and a lease table per scope, all in this process.

    `acquire` never awaits between checking and counting, so it is atomic here.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, _Counters] = {}

    async def acquire(
        self, scopes: list[Scope], tokens: int, lease_id: str, lease_seconds: float
    ) -> Lease:
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        reset = (window + 1) * WINDOW_SECONDS - now
        counters = [self._counters.setdefault(scope.name, _Counters()) for scope in scopes]
        for scope, counter in zip(scopes, counters, strict=True):
            counter.roll(window, now)
            self._check(scope, counter, tokens, reset)
        lease = Lease(lease_id, scopes, window, tokens, reset, backend=self)
        for scope, counter in zip(scopes, counters, strict=True):
            counter.requests += 1
            counter.tokens += tokens
            counter.leases[lease_id] = now + lease_seconds
            lease.usages.append(ScopeUsage(scope, counter.requests, counter.tokens))
        return lease

    @staticmethod
    def _check(scope: Scope, counter: _Counters, tokens: int, reset: float) -> None:
        limit = scope.limit
        if limit.requests_per_minute and counter.requests + 1 > limit.requests_per_minute:
            raise refusal(scope, "requests", reset)
        if limit.tokens_per_minute and counter.tokens + tokens > limit.tokens_per_minute:
            raise refusal(scope, "tokens", reset)
        if limit.concurrent_requests and len(counter.leases) >= limit.concurrent_requests:
            raise refusal(scope, "concurrent", 1.0)

    async def release(self, lease: Lease, actual_tokens: int) -> None:
        for scope in lease.scopes:
            counter = self._counters.get(scope.name)
            if counter is None:
                continue
            counter.leases.pop(lease.lease_id, None)
            if counter.window == lease.window:
                counter.tokens = max(0, counter.tokens + actual_tokens - lease.tokens)
