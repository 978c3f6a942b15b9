"""The budget gate every run passes: rate limits first, then the balance; and the way out.

`enter` counts the request against its key's and user's limits (429 when over), then
reserves its estimated cost (402 when the balance cannot cover it, releasing the rate
limit slot again). Nothing has reached the upstream at that point. `leave` settles the
ledger with the actual usage, corrects the tokens-per-minute counters and frees the
concurrency slot, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.billing.meter import Admission, Meter
from agenthost.billing.tokens import count_prompt
from agenthost.conversation import AgentSpec, RunRequest
from agenthost.events import StepFinished
from agenthost.limits import RateLimiter, scopes_for
from agenthost.limits.base import Lease
from agenthost.settings import LimitSettings


@dataclass(slots=True)
class Pass:
    """A request let through the gate; `headers` are its `x-ratelimit-*` headers."""

    admission: Admission
    lease: Lease | None
    headers: dict[str, str] = field(default_factory=dict)
    left: bool = False


class Gate:
    """Rate limits and balance admission for one process (shared state via Redis)."""

    def __init__(self, meter: Meter, limiter: RateLimiter, limits: LimitSettings) -> None:
        self.meter = meter
        self.limiter = limiter
        self._limits = limits

    def _output_reserve(self, request: RunRequest) -> int:
        return request.max_output_tokens or self.meter.output_reserve_tokens

    async def enter(self, principal: Principal, agent: AgentSpec, request: RunRequest) -> Pass:
        prompt_tokens = count_prompt(agent, request)
        lease = await self._acquire(principal, prompt_tokens + self._output_reserve(request))
        try:
            admission = await self.meter.admit(
                principal, agent, prompt_tokens, request.max_output_tokens
            )
        except BaseException:
            if lease is not None:
                await self.limiter.release(lease, 0)
            raise
        return Pass(admission, lease, lease.headers if lease is not None else {})

    async def _acquire(self, principal: Principal, tokens: int) -> Lease | None:
        scopes = scopes_for(self._limits, principal.user_id, principal.key_id)
        if not scopes:
            return None
        seconds = self._limits.run.run_deadline_seconds + 60
        return await self.limiter.acquire(scopes, tokens, ids.token(8), seconds)

    async def leave(self, passed: Pass, steps: list[StepFinished], request_id: str) -> None:
        """Settle and free the limits; safe to call twice (the second call does nothing)."""
        if passed.left:
            return
        passed.left = True
        try:
            await self.meter.settle(passed.admission, steps, request_id)
        finally:
            if passed.lease is not None:
                used = sum(step.usage.total_tokens for step in steps)
                await self.limiter.release(passed.lease, used)
