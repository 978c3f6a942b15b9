"""One run's spending: every model call admitted, capped to what the caller can pay, and
its usage validated before it is recorded.

`admit` (before a call goes upstream) holds the worst case of everything the run may
have cost so far: the calls already made (not yet in the ledger, which is written when
the run ends) plus this call's input at its token bound (at the model's dearest input
rate) and its output at its cap. The cap is lowered to what the balance minus the other
runs' holds can pay, in the same atomic step that records the hold (reservations.py).
When not even `min_output_tokens` (or the whole cap, if smaller) is affordable the call
is refused with `InsufficientBalance`: before the first call that is a 402 with nothing
sent upstream; later it ends the run.

`settle` (after the call) turns what the upstream reported into the usage recorded:
non-negative integers only, input at most the prompt's bound, output at most the cap
sent, cached and reasoning tokens within their totals. Anything unreadable is charged at
the estimate and logged as an upstream defect. So a charge never exceeds its hold, and
with settlement writing the ledger before it drops the hold (meter.py), concurrent runs
cannot take a balance below zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.billing.pricing import Rates, cost
from agenthost.billing.reservations import Reservation
from agenthost.billing.tokens import PromptSize, prompt_size
from agenthost.conversation import AgentSpec, ModelRequest
from agenthost.errors import InsufficientBalance
from agenthost.events import Usage
from agenthost.observability import metrics

if TYPE_CHECKING:
    from agenthost.billing.meter import Meter

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # output estimate for a call whose usage never arrived
MICRO = 1_000_000  # rates are credits per 1M tokens


@dataclass(slots=True)
class _Call:
    """The call in flight: what it may use."""

    model: str
    rates: Rates
    prompt: PromptSize
    cap: int


def _zero() -> int:
    return 0


def _count(value: object) -> int | None:
    """A token count as reported, or None when it is not a non-negative integer."""
    return value if type(value) is int and value >= 0 else None


def _credits(micro: int) -> int:
    return -(-micro // MICRO)


@dataclass(slots=True)
class _Ask:
    """One admission's arithmetic: what the call costs at most for a given cap."""

    spent: int  # credits of the run's earlier calls
    input_micro: int  # the prompt's bound at the dearest input rate, in micro-credits
    output_rate: int
    least: int  # the smallest useful cap

    def cap_for(self, available: int, wanted: int) -> int | None:
        """The largest cap up to `wanted` that `available` credits pay, or None."""
        room = (available - self.spent) * MICRO - self.input_micro
        if room < 0:
            return None
        cap = wanted if self.output_rate == 0 else min(wanted, room // self.output_rate)
        return cap if cap >= self.least else None

    def hold_for(self, cap: int) -> int:
        return self.spent + _credits(self.input_micro + cap * self.output_rate)


class RunBudget:
    """The spending of one run, for one user (and the key's budget, when it has one);
    made by `Meter.budget`."""

    def __init__(self, meter: Meter, principal: Principal, agent: AgentSpec) -> None:
        self._meter = meter
        self.principal = principal
        self.agent = agent
        self.spent = 0  # credits of the calls settled so far (not yet in the ledger)
        self.reservation: Reservation | None = None
        self.key_reservation: Reservation | None = None
        self._id = ids.token(8)
        self._call: _Call | None = None
        self.settled = False

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    async def admit(self, call: ModelRequest, provider: str | None = None) -> None:
        # Called again for a fallback before it is reached: its hold replaces the last.
        rates = self._meter.prices.rates_for(call.model, provider or self.agent.provider)
        wanted = call.max_output_tokens or self._meter.min_output_tokens
        pending = self._call = _Call(call.model, rates, prompt_size(call), wanted)
        if not self._meter.enabled:
            return
        in_rate = max(rates.input, rates.cache_read, rates.cache_write)
        ask = _Ask(
            self.spent,
            pending.prompt.bound * in_rate,
            rates.output,
            min(self._meter.min_output_tokens, wanted),
        )
        if ask.input_micro == 0 and ask.output_rate == 0:
            return  # a free model: nothing to hold, nothing to refuse
        cap = wanted
        if self.principal.key_max_credits is not None:
            cap = await self._hold_key(ask, cap)
        try:
            cap = await self._hold_user(ask, cap)
        except InsufficientBalance:
            await self._key_back_to_spent()
            raise
        key_held = self.key_reservation
        if key_held is not None and key_held.credits > ask.hold_for(cap):
            # The balance lowered the cap: the key holds that much only (always accepted).
            amount = ask.hold_for(cap)
            self.key_reservation = await self._meter.reservations.hold(
                f"key:{self.principal.key_id}",
                key_held.reservation_id,
                self._meter.reservation_seconds,
                amount,
                lambda _: amount,
            )
        call.max_output_tokens = pending.cap = cap

    async def _hold(
        self, owner: str, hold_id: str, available: int, ask: _Ask, wanted: int
    ) -> tuple[Reservation | None, int, int]:
        """Hold for the largest affordable cap; (reservation, cap, credits seen free)."""
        seen = {"free": 0, "cap": 0}

        def decide(free: int) -> int | None:
            seen["free"] = free
            cap = ask.cap_for(free, wanted)
            if cap is None:
                return None
            seen["cap"] = cap
            return ask.hold_for(cap)

        store = self._meter.reservations
        held = await store.hold(owner, hold_id, self._meter.reservation_seconds, available, decide)
        return held, seen["cap"], seen["free"]

    async def _hold_user(self, ask: _Ask, wanted: int) -> int:
        balance = await self._meter.credits(self.user_id)
        held, cap, free = await self._hold(self.user_id, self._id, balance, ask, wanted)
        if held is None:
            # The next request reads the balance afresh: a grant made elsewhere (the CLI,
            # another worker) after a refusal is what the refused user waits for.
            self._meter.forget(self.user_id)
            metrics.INSUFFICIENT_BALANCE.inc()
            raise InsufficientBalance(
                f"Your balance ({max(free - ask.spent, 0)} credits not held by running "
                f"requests) cannot cover this request: its input alone may cost "
                f"{_credits(ask.input_micro)} credits, and a useful answer "
                f"{_credits(ask.least * ask.output_rate)} more.",
                code="insufficient_balance",
            )
        self.reservation = held
        return cap

    async def _hold_key(self, ask: _Ask, wanted: int) -> int:
        """The same discipline for the key's budget: its holds live beside the users'
        under the owner `key:<id>`, against what the key may still spend this period.

        The spend is read outside the hold's lock, so a run that settled (and dropped its
        hold) in between would be seen by neither; a settle writes its spend before it
        drops its hold, so reading the spend again after holding catches it, and the hold
        is decided again on the new figure."""
        principal = self.principal
        assert principal.key_id is not None and principal.key_max_credits is not None
        owner, hold_id = f"key:{principal.key_id}", f"{self._id}:key"
        spent = await self._meter.key_spend(principal.key_id, principal.key_budget_period)
        while True:
            left = principal.key_max_credits - spent
            held, cap, free = await self._hold(owner, hold_id, left, ask, wanted)
            if held is None:  # an earlier hold of this run stays until the settle
                period = principal.key_budget_period or "lifetime"
                metrics.INSUFFICIENT_BALANCE.inc()
                raise InsufficientBalance(
                    f"This API key's budget ({principal.key_max_credits} credits per "
                    f"{period}, {max(free - ask.spent, 0)} left and not held by running "
                    f"requests) cannot cover this request (its input alone may cost "
                    f"{_credits(ask.input_micro)} credits).",
                    code="key_budget_exceeded",
                )
            self.key_reservation = held
            again = await self._meter.key_spend(principal.key_id, principal.key_budget_period)
            if again == spent:
                return cap
            spent = again

    async def _key_back_to_spent(self) -> None:
        """The balance refused a call the key's budget had admitted: the key holds only
        what the run's earlier calls spent again (nothing, if none)."""
        held, self.key_reservation = self.key_reservation, None
        if held is None:
            return
        store = self._meter.reservations
        if self.spent:
            owner = f"key:{self.principal.key_id}"
            spent = self.spent
            self.key_reservation = await store.hold(
                owner, held.reservation_id, self._meter.reservation_seconds, spent, lambda _: spent
            )
        else:
            await store.release(held)

    def settle(self, reported: Usage | None, output_chars: int) -> Usage:
        call = self._call
        if call is None:  # never admitted: nothing went upstream
            return Usage()
        self._call = None
        usage = self._validated(call, reported, output_chars)
        if self._meter.enabled:
            self.spent += cost(usage, call.rates)
        return usage

    def _validated(self, call: _Call, reported: Usage | None, output_chars: int) -> Usage:
        estimated_output = min(-(-output_chars // CHARS_PER_TOKEN), call.cap)
        if reported is None:
            return Usage(input_tokens=call.prompt.estimate, output_tokens=estimated_output)
        defects: list[str] = []

        def field(name: str, value: int | None, default: Callable[[], int], most: int) -> int:
            # `default` is called only for a missing figure: the prompt's estimate is a
            # full pass over its text, which most calls (usage reported) never need.
            if value is None:
                defects.append(f"{name}={getattr(reported, name)!r}")
                return min(default(), most)
            if value > most:
                defects.append(f"{name}={value} over {most}")
                return most
            return value

        prompt = call.prompt
        inputs = field(
            "input_tokens", _count(reported.input_tokens), lambda: prompt.estimate, prompt.bound
        )
        outputs = field(
            "output_tokens", _count(reported.output_tokens), lambda: estimated_output, call.cap
        )
        read = field("cache_read_tokens", _count(reported.cache_read_tokens), _zero, inputs)
        write = field(
            "cache_write_tokens", _count(reported.cache_write_tokens), _zero, inputs - read
        )
        reasoning = field("reasoning_tokens", _count(reported.reasoning_tokens), _zero, outputs)
        if defects:
            log.warning(
                "upstream defect: %s (model %s) reported unusable usage (%s); recorded "
                "within the call's bounds instead",
                self.agent.provider,
                call.model,
                ", ".join(defects),
            )
        return Usage(inputs, outputs, read, write, reasoning)
