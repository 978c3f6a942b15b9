"""Admission against balances before a run, and settlement into the ledger after it.

Before contacting the upstream, a run's cost is estimated (prompt tokens counted
locally plus a reserve for output) and held as a reservation; if the balance minus
the reservations already held cannot cover it, the request fails with 402 and nothing
is sent upstream. Settlement writes one transaction per model call and the balance
change in the same database transaction, exactly once per run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from agenthost.auth.principal import Principal
from agenthost.billing.pricing import PriceBook, cost
from agenthost.conversation import AgentSpec
from agenthost.errors import InsufficientBalance
from agenthost.events import StepFinished, Usage
from agenthost.settings import BalanceSettings
from agenthost.storage.database import Database
from agenthost.storage.models import Transaction
from agenthost.storage.repositories import balances

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Admission:
    principal: Principal
    agent: AgentSpec
    reserved: int
    settled: bool = False
    steps: list[StepFinished] = field(default_factory=list)


class Meter:
    def __init__(self, db: Database, settings: BalanceSettings, prices: PriceBook) -> None:
        self._db = db
        self._settings = settings
        self.prices = prices
        self._known_users: set[str] = set()
        self._reserved: dict[str, int] = defaultdict(int)
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    async def ensure_balance(self, user_id: str) -> None:
        """Create the user's balance at `start_balance` the first time they are seen."""
        if user_id in self._known_users:
            return
        async with self._db.session() as session:
            await balances.ensure(session, user_id, self._settings.start_balance)
        self._known_users.add(user_id)

    def estimate(self, agent: AgentSpec, prompt_tokens: int, max_output: int | None) -> int:
        rates = self.prices.rates_for(agent.model)
        output = max_output or self._settings.output_reserve_tokens
        return cost(Usage(input_tokens=prompt_tokens, output_tokens=output), rates)

    async def admit(
        self, principal: Principal, agent: AgentSpec, prompt_tokens: int, max_output: int | None
    ) -> Admission:
        if not self.enabled:
            return Admission(principal, agent, 0)
        await self.ensure_balance(principal.user_id)
        needed = self.estimate(agent, prompt_tokens, max_output)
        async with self._lock:
            async with self._db.session() as session:
                credits = await balances.get_credits(session, principal.user_id) or 0
            available = credits - self._reserved[principal.user_id]
            if available < needed or credits <= 0:
                raise InsufficientBalance(
                    f"Your balance ({credits} credits, {available} available) cannot cover this "
                    f"request (estimated {needed} credits).",
                    code="insufficient_balance",
                )
            self._reserved[principal.user_id] += needed
        return Admission(principal, agent, needed)

    async def settle(
        self, admission: Admission, steps: list[StepFinished], request_id: str
    ) -> None:
        """Charge each model call once; release the reservation. Safe to call twice."""
        if admission.settled:
            return
        admission.settled = True
        user_id = admission.principal.user_id
        self._reserved[user_id] -= admission.reserved
        if not self.enabled or not steps:
            return
        rows = [self._transaction(admission, step, request_id) for step in steps]
        try:
            async with self._db.session() as session:
                for row in rows:
                    await balances.apply(session, row)
        except Exception:
            log.exception("ledger settle failed for %s", request_id)
            raise

    def _transaction(
        self, admission: Admission, step: StepFinished, request_id: str
    ) -> Transaction:
        rates = self.prices.rates_for(step.model)
        usage = step.usage
        return Transaction(
            user_id=admission.principal.user_id,
            kind="usage",
            api_key_id=admission.principal.key_id,
            agent_id=admission.agent.id,
            request_id=request_id,
            model=step.model,
            input_tokens=usage.input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            rates=rates.as_dict(),
            credits=-cost(usage, rates),
        )
