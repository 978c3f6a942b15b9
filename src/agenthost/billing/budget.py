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


def _count(value: object) -> int | None:
    """A token count as reported, or None when it is not a non-negative integer."""
    return value if type(value) is int and value >= 0 else None


def _credits(micro: int) -> int:
    return -(-micro // MICRO)


class RunBudget:
    """The spending of one run, for one user; made by `Meter.budget`."""

    def __init__(self, meter: Meter, principal: Principal, agent: AgentSpec) -> None:
        self._meter = meter
        self.principal = principal
        self.agent = agent
        self.spent = 0  # credits of the calls settled so far (not yet in the ledger)
        self.reservation: Reservation | None = None
        self._id = ids.token(8)
        self._call: _Call | None = None
        self.settled = False

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    async def admit(self, call: ModelRequest) -> None:
        rates = self._meter.prices.rates_for(call.model)
        wanted = call.max_output_tokens or self._meter.min_output_tokens
        pending = self._call = _Call(call.model, rates, prompt_size(call), wanted)
        if not self._meter.enabled:
            return
        in_rate = max(rates.input, rates.cache_read, rates.cache_write)
        input_micro = pending.prompt.bound * in_rate
        if input_micro == 0 and rates.output == 0:
            return  # a free model: nothing to hold, nothing to refuse
        least = min(self._meter.min_output_tokens, wanted)
        seen = {"available": 0}

        def decide(available: int) -> int | None:
            """What to hold given the credits not held by other runs; None to refuse."""
            seen["available"] = available
            room = (available - self.spent) * MICRO - input_micro
            cap = wanted if rates.output == 0 else min(wanted, max(room, -1) // rates.output)
            if room < 0 or cap < least:
                return None
            pending.cap = cap
            return self.spent + _credits(input_micro + cap * rates.output)

        balance = await self._meter.credits(self.user_id)
        held = await self._meter.reservations.hold(
            self.user_id, self._id, self._meter.reservation_seconds, balance, decide
        )
        if held is None:
            raise InsufficientBalance(
                f"Your balance ({max(seen['available'] - self.spent, 0)} credits not held by "
                f"running requests) cannot cover this request: its input alone may cost "
                f"{_credits(input_micro)} credits, and a useful answer "
                f"{_credits(least * rates.output)} more.",
                code="insufficient_balance",
            )
        self.reservation = held
        call.max_output_tokens = pending.cap

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

        def field(name: str, value: int | None, default: int, most: int) -> int:
            if value is None:
                defects.append(f"{name}={getattr(reported, name)!r}")
                return min(default, most)
            if value > most:
                defects.append(f"{name}={value} over {most}")
                return most
            return value

        inputs = field(
            "input_tokens", _count(reported.input_tokens), call.prompt.estimate, call.prompt.bound
        )
        outputs = field("output_tokens", _count(reported.output_tokens), estimated_output, call.cap)
        read = field("cache_read_tokens", _count(reported.cache_read_tokens), 0, inputs)
        write = field("cache_write_tokens", _count(reported.cache_write_tokens), 0, inputs - read)
        reasoning = field("reasoning_tokens", _count(reported.reasoning_tokens), 0, outputs)
        if defects:
            log.warning(
                "upstream defect: %s (model %s) reported unusable usage (%s); recorded "
                "within the call's bounds instead",
                self.agent.provider,
                call.model,
                ", ".join(defects),
            )
        return Usage(inputs, outputs, read, write, reasoning)
