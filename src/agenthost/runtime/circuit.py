"""Circuit breakers: a provider that keeps failing before its first token is skipped for
a cool-down, so callers of agents with fallbacks don't pay its timeout every time.

One breaker per provider, per process (each worker learns on its own; a dead upstream
is learnt after `failures` calls in each). Closed: calls pass; `failures` consecutive
pre-first-token failures open it. Open: skipped until `cooldown_seconds` have passed,
then exactly one trial call passes (half-open); its first token closes the breaker, its
failure opens it for another cool-down. A trial that ends without either (the caller
left) lets the next call be the trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agenthost.observability import metrics
from agenthost.settings import CircuitBreakerSettings

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


@dataclass(slots=True, frozen=True)
class Ticket:
    """Leave to call a provider; `trial` when it is the half-open breaker's one trial."""

    provider: str
    trial: bool = False


class Breaker:
    def __init__(
        self,
        provider: str,
        config: CircuitBreakerSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self._limit = config.failures
        self._cooldown = config.cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False
        self._publish()  # a dashboard sees every breaker, closed ones too

    @property
    def state(self) -> int:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self._trial_out else OPEN

    def enter(self) -> Ticket | None:
        """A ticket to call, or None while the breaker is open."""
        if self._opened_at is None:
            return Ticket(self.provider)
        if self._trial_out or self._clock() < self._opened_at + self._cooldown:
            return None
        self._trial_out = True
        self._publish()
        return Ticket(self.provider, trial=True)

    def may_enter(self) -> bool:
        if self._opened_at is None:
            return True
        return not self._trial_out and self._clock() >= self._opened_at + self._cooldown

    def succeeded(self, ticket: Ticket) -> None:
        """The call's first token arrived: the provider works."""
        self._failures = 0
        if self._opened_at is not None and (ticket.trial or not self._trial_out):
            self._opened_at, self._trial_out = None, False
            self._publish()

    def failed(self, ticket: Ticket) -> None:
        """The call failed before its first token (after the provider's own retries)."""
        if not self._limit:
            return
        if ticket.trial or self._opened_at is not None:
            if ticket.trial:
                self._trial_out = False
            self._opened_at = self._clock()  # the trial failed: another cool-down
            self._publish()
            return
        self._failures += 1
        if self._failures >= self._limit:
            self._opened_at, self._failures = self._clock(), 0
            self._publish()

    def abandoned(self, ticket: Ticket) -> None:
        """The call ended with neither a token nor an upstream failure."""
        if ticket.trial:
            self._trial_out = False
            self._publish()

    def _publish(self) -> None:
        metrics.CIRCUIT_STATE.labels(self.provider).set(self.state)


class Breakers:
    """The breakers of the configured providers (none for a provider that sets 0)."""

    def __init__(
        self,
        configs: dict[str, CircuitBreakerSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._breakers = {
            name: Breaker(name, config, clock)
            for name, config in configs.items()
            if config.failures
        }

    def enter(self, provider: str) -> Ticket | None:
        breaker = self._breakers.get(provider)
        return Ticket(provider) if breaker is None else breaker.enter()

    def may_enter(self, provider: str) -> bool:
        """Whether `enter` could give a ticket now (without taking a trial)."""
        breaker = self._breakers.get(provider)
        return breaker is None or breaker.may_enter()

    def forced(self, provider: str) -> Ticket:
        """A ticket despite an open breaker (no other way to serve the call)."""
        return Ticket(provider)

    def succeeded(self, ticket: Ticket) -> None:
        if (breaker := self._breakers.get(ticket.provider)) is not None:
            breaker.succeeded(ticket)

    def failed(self, ticket: Ticket) -> None:
        if (breaker := self._breakers.get(ticket.provider)) is not None:
            breaker.failed(ticket)

    def abandoned(self, ticket: Ticket) -> None:
        if (breaker := self._breakers.get(ticket.provider)) is not None:
            breaker.abandoned(ticket)
