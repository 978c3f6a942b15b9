"""Internal events: what providers yield and what the runtime emits to encoders.

A leaf module: it imports nothing of ours. Providers yield `ModelEvent`s for one
upstream call; the runtime turns them into `RunEvent`s for a whole agent run,
which the protocol encoders translate into wire chunks or response events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(slots=True)
class Usage:
    """Token counts of one or more model calls.

    `input_tokens` includes cached tokens (`cache_read_tokens` and
    `cache_write_tokens` are subsets of it), as OpenAI reports them;
    `reasoning_tokens` is a subset of `output_tokens`.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens


# --- model events: one upstream call -------------------------------------------------


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ToolCallStart:
    """The model began a function call. `index` is its position in this message."""

    index: int
    call_id: str
    name: str


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    index: int
    call_id: str
    arguments_delta: str


@dataclass(slots=True, frozen=True)
class ToolCallEnd:
    index: int
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True, frozen=True)
class UsageReport:
    usage: Usage
    model: str | None = None


@dataclass(slots=True, frozen=True)
class Finish:
    reason: FinishReason


ModelEvent = (
    TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | UsageReport | Finish
)


# --- run events: a whole agent run ----------------------------------------------------


@dataclass(slots=True, frozen=True)
class ServerToolStart:
    """A tool the server runs itself (MCP); never a call for the caller to execute."""

    call_id: str
    server: str
    name: str
    arguments: str


@dataclass(slots=True, frozen=True)
class ServerToolResult:
    call_id: str
    server: str
    name: str
    arguments: str
    output: str
    is_error: bool
    # A sub-agent call or a handoff (agent graphs): the agent reached and, for a
    # sub-agent, what its whole run used.
    agent_id: str | None = None
    usage: Usage | None = None


@dataclass(slots=True, frozen=True)
class StepFinished:
    """One model call of the run ended; carries its usage for the ledger."""

    step: int
    model: str
    usage: Usage
    provider: str = ""  # the provider that served it ("": the agent's own)


RunStatus = Literal["completed", "incomplete", "failed", "cancelled"]


@dataclass(slots=True, frozen=True)
class RunFinished:
    """The run ended. `finish_reason` is the last model call's, `incomplete_reason`
    is set when a limit ended the run (max_output_tokens, max_steps, deadline…)."""

    status: RunStatus
    finish_reason: FinishReason
    usage: Usage
    incomplete_reason: str | None = None
    agent_id: str | None = None  # the agent that answered last (after any handoff)


RunEvent = (
    TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | ServerToolStart
    | ServerToolResult
    | StepFinished
    | RunFinished
)
