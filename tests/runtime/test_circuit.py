"""The circuit breaker's states on a clock the test moves: consecutive failures open it,
a success resets the count, one trial passes after the cool-down, and a trial the caller
abandoned lets the next call be the trial."""

from __future__ import annotations

from agenthost.runtime.circuit import CLOSED, HALF_OPEN, OPEN, Breaker, Breakers
from agenthost.settings import CircuitBreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock, failures: int = 3, cooldown: float = 10) -> Breaker:
    config = CircuitBreakerSettings(failures=failures, cooldown_seconds=cooldown)
    return Breaker("p", config, clock)


def _fail(breaker: Breaker, times: int) -> None:
    for _ in range(times):
        ticket = breaker.enter()
        assert ticket is not None
        breaker.failed(ticket)


def test_consecutive_failures_open_and_a_success_resets_the_count() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 2)
    ticket = breaker.enter()
    assert ticket is not None
    breaker.succeeded(ticket)
    _fail(breaker, 2)
    assert breaker.state == CLOSED
    _fail(breaker, 1)
    assert breaker.state == OPEN
    assert breaker.enter() is None
    clock.now += 9.9
    assert breaker.enter() is None and not breaker.may_enter()


def test_one_trial_after_the_cool_down_closes_or_reopens() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.now += 10
    assert breaker.may_enter()
    trial = breaker.enter()
    assert trial is not None and trial.trial and breaker.state == HALF_OPEN
    assert breaker.enter() is None  # only one trial at a time
    breaker.failed(trial)
    assert breaker.state == OPEN and breaker.enter() is None
    clock.now += 10
    trial = breaker.enter()
    assert trial is not None and trial.trial
    breaker.succeeded(trial)
    assert breaker.state == CLOSED
    ticket = breaker.enter()
    assert ticket is not None and not ticket.trial


def test_an_abandoned_trial_lets_the_next_call_try() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.now += 10
    trial = breaker.enter()
    assert trial is not None
    breaker.abandoned(trial)
    again = breaker.enter()
    assert again is not None and again.trial


def test_zero_failures_turns_the_breaker_off() -> None:
    clock = Clock()
    breakers = Breakers({"p": CircuitBreakerSettings(failures=0)}, clock)
    for _ in range(100):
        ticket = breakers.enter("p")
        assert ticket is not None
        breakers.failed(ticket)
    assert breakers.enter("p") is not None and breakers.may_enter("p")
