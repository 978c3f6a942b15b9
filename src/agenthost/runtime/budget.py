"""What the agent loop asks before and after each model call (billing answers it).

`admit` runs before a call goes upstream: it may lower `call.max_output_tokens` to what
the caller can pay for, and raises (`InsufficientBalance`) when not even a useful answer
is affordable. `settle` runs once per call with what the upstream reported (or nothing,
when it reported no usable usage) and returns the usage to record: validated, clamped
to what the call could have used, estimated where missing. Billing implements this
protocol (`billing/budget.py`); the runtime never imports billing.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from agenthost.conversation import ModelRequest
from agenthost.events import Usage

CHARS_PER_TOKEN = 4  # a documented estimate for output whose usage never arrived


class CallBudget(Protocol):
    # `provider`: the one serving the call when it is not the agent's own (a fallback).
    async def admit(self, call: ModelRequest, provider: str | None = None) -> None: ...

    def settle(self, reported: Usage | None, output_chars: int) -> Usage: ...


class Unmetered:
    """No balance to check: usage is kept as reported, output estimated when missing."""

    async def admit(self, call: ModelRequest, provider: str | None = None) -> None:
        return None

    def settle(self, reported: Usage | None, output_chars: int) -> Usage:
        counts = () if reported is None else dataclasses.astuple(reported)
        if reported is not None and all(type(n) is int and n >= 0 for n in counts):
            return reported
        return Usage(output_tokens=-(-output_chars // CHARS_PER_TOKEN))
