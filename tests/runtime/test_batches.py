"""Events that arrive from the upstream together travel through the runtime as a batch:
`RunState.ready_events` tells a consumer how many more are already in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from agenthost.conversation import AgentSpec, Message, ModelRequest, RunRequest, TextPart
from agenthost.events import (
    Finish,
    ModelEvent,
    RunFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.providers.base import Provider
from agenthost.runtime.loop import AgentRunner, RunState
from agenthost.settings import RunLimits

BATCHES: list[list[ModelEvent]] = [
    [TextDelta("a"), TextDelta("b"), TextDelta("c")],
    [TextDelta("d")],
    [TextDelta("e"), UsageReport(Usage(input_tokens=3, output_tokens=5), "m"), Finish("stop")],
]


class Batching(Provider):
    """Yields fixed batches, and records the deadline it was handed."""

    bounds_waits = True

    def __init__(self, batches: list[list[ModelEvent]]) -> None:
        super().__init__("batching")
        self.batches = batches
        self.deadlines: list[float | None] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        async for batch in self.stream_batches(request):
            for event in batch:
                yield event

    async def stream_batches(self, request: ModelRequest) -> AsyncIterator[list[ModelEvent]]:
        self.deadlines.append(request.deadline)
        for batch in self.batches:
            yield list(batch)


def _agent() -> AgentSpec:
    return AgentSpec(id="agent_t", name="t", owner_id="usr_t", provider="batching", model="m")


def _ask() -> RunRequest:
    return RunRequest(messages=[Message(role="user", content=[TextPart("hi")])])


async def test_ready_events_count_what_is_left_of_each_batch() -> None:
    provider = Batching(BATCHES)
    runner = AgentRunner({"batching": provider}, RunLimits(run_deadline_seconds=30))
    state = RunState()
    seen: list[tuple[str, int]] = []
    async for event in runner.run(_agent(), _ask(), state):
        if isinstance(event, TextDelta):
            seen.append((event.text, state.ready_events))
        last = event
    assert seen == [("a", 2), ("b", 1), ("c", 0), ("d", 0), ("e", 0)]
    assert isinstance(last, RunFinished) and last.usage.output_tokens == 5
    assert provider.deadlines[0] is not None  # the run's deadline reaches the provider


async def test_a_limit_inside_a_batch_still_delivers_the_events_before_it() -> None:
    calls: list[ModelEvent] = [
        TextDelta("before"),
        ToolCallStart(0, "call_1", "look"),
        ToolCallDelta(0, "call_1", "x" * 64),
        ToolCallEnd(0, "call_1", "look", "x" * 64),
        Finish("tool_calls"),
    ]
    runner = AgentRunner({"batching": Batching([calls])}, RunLimits(max_tool_argument_bytes=16))
    events = [e async for e in runner.run(_agent(), _ask(), RunState())]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["before"]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "incomplete"
    assert finished.incomplete_reason == "max_tool_argument_bytes"
