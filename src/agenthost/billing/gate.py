"""The budget gate every run passes: rate limits first, then the balance; and the way out.

`enter` counts the request against its key's and user's limits (429 when over) and opens
the run's budget, which admits each model call against the balance before it goes
upstream (402 for the first call is still a plain HTTP error: no event has been sent).
`leave` settles the ledger with the validated usage, corrects the tokens-per-minute
counters and frees the concurrency slot, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.billing.budget import RunBudget
from agenthost.billing.meter import Meter
from agenthost.billing.tokens import messages_size
from agenthost.conversation import AgentSpec, Message, RunRequest, TextPart
from agenthost.events import StepFinished
from agenthost.limits import RateLimiter, scopes_for
from agenthost.limits.base import Lease
from agenthost.settings import LimitSettings


@dataclass(slots=True)
class Pass:
    """A request let through the gate; `headers` are its `x-ratelimit-*` headers."""

    budget: RunBudget
    lease: Lease | None
    headers: dict[str, str] = field(default_factory=dict)
    left: bool = False


def _request_tokens(agent: AgentSpec, request: RunRequest) -> int:
    """The tokens a request is expected to use, for tokens-per-minute limits (corrected
    with the real usage when it ends)."""
    instructions = [
        Message(role="system", content=[TextPart(text)])
        for text in (agent.instructions, request.instructions)
        if text
    ]
    size = messages_size(instructions + request.messages, request.tools)
    return size.estimate + (request.max_output_tokens or 0)


class Gate:
    """Rate limits and balance budgets for one process (shared state via Redis)."""

    def __init__(self, meter: Meter, limiter: RateLimiter, limits: LimitSettings) -> None:
        self.meter = meter
        self.limiter = limiter
        self._limits = limits

    async def enter(self, principal: Principal, agent: AgentSpec, request: RunRequest) -> Pass:
        lease = await self._acquire(principal, agent, request)
        budget = self.meter.budget(principal, agent)
        return Pass(budget, lease, lease.headers if lease is not None else {})

    async def _acquire(
        self, principal: Principal, agent: AgentSpec, request: RunRequest
    ) -> Lease | None:
        scopes = scopes_for(self._limits, principal.user_id, principal.limit_key)
        if not scopes:
            return None
        seconds = self._limits.run.run_deadline_seconds + 60
        tokens = _request_tokens(agent, request)
        return await self.limiter.acquire(scopes, tokens, ids.token(8), seconds)

    async def leave(
        self, passed: Pass, steps: list[StepFinished], request_id: str, other_tokens: int = 0
    ) -> None:
        """Settle and free the limits; safe to call twice (the second call does nothing).
        `other_tokens`: what the request's other runs used (sub-agents, handoff targets;
        settled on their own budgets), counted against tokens per minute too."""
        if passed.left:
            return
        passed.left = True
        try:
            await self.meter.settle(passed.budget, steps, request_id)
        finally:
            if passed.lease is not None:
                used = sum(step.usage.total_tokens for step in steps) + other_tokens
                await self.limiter.release(passed.lease, used)
