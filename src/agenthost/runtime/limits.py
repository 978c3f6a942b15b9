"""The limits of one run: the configured `limits.run`, overridden per agent by its params.

Agent params `max_steps`, `run_deadline_seconds`, `tool_timeout_seconds` and
`max_tool_argument_bytes` (positive numbers) replace the configured values for that
agent; anything else there is ignored.
"""

from __future__ import annotations

from typing import Any

from agenthost.settings import RunLimits

_INTEGER_KEYS = ("max_steps", "max_tool_argument_bytes")
_SECONDS_KEYS = ("run_deadline_seconds", "tool_timeout_seconds")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def limits_for(base: RunLimits, params: dict[str, Any]) -> RunLimits:
    updates: dict[str, Any] = {}
    for key in _INTEGER_KEYS:
        if _positive(params.get(key)):
            updates[key] = max(1, int(params[key]))
    for key in _SECONDS_KEYS:
        if _positive(params.get(key)):
            updates[key] = float(params[key])
    return base.model_copy(update=updates) if updates else base
