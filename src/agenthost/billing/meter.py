"""Balances: read (with start balance and auto-refill), spent per run, settled into the
ledger.

Each run gets a `RunBudget` (budget.py), which admits every model call against the
balance and holds its worst case as a reservation. Settlement commits the run's charge
to the database *before* it drops the reservation. With that order a concurrent
admission can count a finishing run twice (its reservation and its charge) but never
zero times, and since no call is charged more than it held, concurrent runs cannot
take a balance below zero.

Settlement writes one transaction per model call and the balance change in the same
database transaction, exactly once per run; concurrent settles share commits
(ledger.py). A crash mid-run writes nothing and its reservation expires with the run
deadline.

The hot path costs one indexed balance read and one reservation round trip per model
call; the only write is the settle. A balance row is created (`start_balance`) the first
time a user is seen, and auto-refill is applied when due, both on that same read.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, timedelta
from functools import partial
from typing import Any

from agenthost.auth.principal import Principal
from agenthost.billing.budget import RunBudget
from agenthost.billing.ledger import LedgerWriter, SettleDeferred
from agenthost.billing.periods import period_start
from agenthost.billing.pricing import PriceBook, cost
from agenthost.billing.reservations import MemoryReservations, ReservationStore
from agenthost.conversation import AgentSpec
from agenthost.events import StepFinished
from agenthost.observability import metrics
from agenthost.settings import BalanceSettings, parse_duration
from agenthost.single_flight import SingleFlight
from agenthost.storage.database import Database
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import balances, rollups

log = logging.getLogger(__name__)

# With in-process reservations (one worker) every settle passes through this process, so a
# balance read can be reused briefly; only out-of-process changes (CLI grants, refills)
# wait this long to be seen. With shared reservations every admission reads the database.
BALANCE_CACHE_SECONDS = 2.0


async def open_balance(db: Database, user_id: str, settings: BalanceSettings) -> int:
    """The user's credits, creating the balance or applying a due refill first.

    Call it wherever a user is seen (API, web UI, CLI).
    """
    async with db.session() as session:
        state = await balances.read(session, user_id)
        if state is None:
            await balances.ensure(session, user_id, settings.start_balance)
            state = await balances.read(session, user_id)
            assert state is not None
        if _refill_due(state, settings):
            interval = timedelta(seconds=parse_duration(settings.auto_refill.interval))
            refilled = await balances.refill_if_due(
                session, user_id, settings.auto_refill.amount, interval
            )
            if refilled is not None:
                return refilled
        return state.credits


def _refill_due(state: balances.BalanceState, settings: BalanceSettings) -> bool:
    refill = settings.auto_refill
    if not refill.enabled or refill.amount <= 0:
        return False
    if state.last_refill_at is None:
        return True
    last = state.last_refill_at
    if last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=UTC)
    return utcnow() - last >= timedelta(seconds=parse_duration(refill.interval))


class Meter:
    """Admits runs against balances and settles their usage into the ledger."""

    def __init__(
        self,
        db: Database,
        settings: BalanceSettings,
        prices: PriceBook,
        reservations: ReservationStore,
        reservation_seconds: float,
    ) -> None:
        self._db = db
        self._settings = settings
        self.prices = prices
        self.reservations = reservations
        self.reservation_seconds = reservation_seconds
        self._ledger = LedgerWriter(db)
        self._cache_balances = isinstance(reservations, MemoryReservations)
        self._balances: dict[str, tuple[float, int]] = {}
        self._reads: SingleFlight[str, int] = SingleFlight()

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    @property
    def min_output_tokens(self) -> int:
        return self._settings.min_output_tokens

    async def key_spend(self, key_id: str, period: str | None) -> int:
        """Credits spent through a key in its current budget period (from the rollups,
        which the settle writes before it drops its holds)."""
        async with self._db.session() as session:
            return await rollups.key_spend(session, key_id, period_start(period))

    @property
    def settles_waiting(self) -> int:
        return self._ledger.waiting

    def budget(self, principal: Principal, agent: AgentSpec) -> RunBudget:
        """The spending of one run (admits and settles each of its model calls)."""
        return RunBudget(self, principal, agent)

    async def credits(self, user_id: str) -> int:
        """The user's balance (briefly cached with in-process reservations)."""
        if not self._cache_balances:
            return await open_balance(self._db, user_id, self._settings)
        hit = self._balances.get(user_id)
        age, credits = (time.monotonic() - hit[0], hit[1]) if hit else (None, None)
        # One read per user at a time, in the background once a value is cached: when it
        # expires under load no admission waits, and none starts a read of its own.
        return await self._reads.cached(
            user_id, partial(self._read_credits, user_id), BALANCE_CACHE_SECONDS, age, credits
        )

    async def _read_credits(self, user_id: str) -> int:
        credits = await open_balance(self._db, user_id, self._settings)
        self._remember(user_id, credits)
        return credits

    def _remember(self, user_id: str, credits: int) -> None:
        if self._cache_balances:
            self._balances[user_id] = (time.monotonic(), credits)

    def forget(self, user_id: str) -> None:
        """Drop a cached balance (an in-process grant changed it)."""
        self._balances.pop(user_id, None)

    async def settle(self, budget: RunBudget, steps: list[StepFinished], request_id: str) -> None:
        """Charge each model call once, then drop the reservation. Safe to call twice."""
        if budget.settled:
            return
        budget.settled = True
        user_id = budget.user_id

        async def written(credits: int | None) -> None:
            # The reservations are held until the charge is in the database.
            if credits is not None:
                self._remember(user_id, credits)
            for held in (budget.reservation, budget.key_reservation):
                if held is not None:
                    await self.reservations.release(held)

        if not steps:
            await written(None)
            return
        rows = [self._transaction(budget, step, request_id) for step in steps]

        async def recorded(credits: int | None) -> None:
            for row in rows:  # counted once the ledger holds them: the two always agree
                metrics.charged(row["provider"], row["model"], row, -row["credits"])
            await written(credits)

        try:
            await self._ledger.write(user_id, rows, charge=self.enabled, after=recorded)
        except SettleDeferred:
            log.warning("ledger settle for %s deferred until the database is back", request_id)
        except Exception:
            log.exception("ledger settle failed for %s", request_id)
            await written(None)
            raise

    async def aclose(self) -> None:
        await self._ledger.aclose()

    def _transaction(
        self, budget: RunBudget, step: StepFinished, request_id: str
    ) -> dict[str, Any]:
        # Priced at the model the call asked for (never a model name the upstream reports),
        # with the usage the budget validated: the same figures its hold covered.
        provider = step.provider or budget.agent.provider  # a fallback's, if one served
        rates = self.prices.rates_for(step.model, provider)
        usage = step.usage
        return {
            "user_id": budget.user_id,
            "kind": "usage",
            "api_key_id": budget.principal.key_id,
            "agent_id": budget.agent.id,
            "request_id": request_id,
            "model": step.model,
            "provider": provider,
            "input_tokens": usage.input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "rates": rates.as_dict(),
            "credits": -cost(usage, rates) if self.enabled else 0,
            "note": None if self.enabled else "balance disabled",
            "created_at": utcnow(),
        }
