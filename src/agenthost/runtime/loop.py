"""The agent loop: model → server tools → model … until an answer, a caller call or a limit.

`AgentRunner.run` yields `RunEvent`s. Caller-side tool calls are passed through and end the
run; server-side calls are run here (in parallel) and reported as `ServerTool*` events.
`RunState` records usage as it arrives so the caller can settle the ledger even when the
client goes away mid-run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from agenthost.conversation import (
    AgentSpec,
    Message,
    ModelRequest,
    RunRequest,
    TextPart,
    ToolCall,
    ToolChoice,
)
from agenthost.errors import InvalidRequest, UpstreamUnavailable
from agenthost.events import (
    Finish,
    FinishReason,
    ModelEvent,
    ReasoningDelta,
    RunEvent,
    RunFinished,
    ServerToolResult,
    ServerToolStart,
    StepFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.providers.base import Provider
from agenthost.runtime.context import initial_messages, model_request
from agenthost.runtime.tools import NoServerTools, ServerTool, ServerTools, ToolResult
from agenthost.settings import RunLimits

CHARS_PER_TOKEN = 4  # a documented estimate, used only when an upstream reports no usage


@dataclass(slots=True)
class RunState:
    """What a run has consumed so far; read by billing when the run ends or is abandoned."""

    steps: list[StepFinished] = field(default_factory=list)
    pending_output_chars: int = 0  # text of the current model call, before its usage arrives
    model: str = ""

    @property
    def usage(self) -> Usage:
        total = Usage()
        for step in self.steps:
            total.add(step.usage)
        return total


@dataclass(slots=True)
class _Step:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    server_calls: list[tuple[ServerTool, ToolCall]] = field(default_factory=list)
    caller_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    model: str | None = None
    finish: FinishReason = "stop"


class AgentRunner:
    def __init__(
        self,
        providers: dict[str, Provider],
        limits: RunLimits,
        server_tools: ServerTools | None = None,
    ) -> None:
        self._providers = providers
        self._limits = limits
        self._server_tools = server_tools or NoServerTools()

    def provider_for(self, agent: AgentSpec) -> Provider:
        provider = self._providers.get(agent.provider)
        if provider is None:
            raise UpstreamUnavailable(
                f"Provider '{agent.provider}' of this agent is not configured.",
            )
        return provider

    async def run(
        self, agent: AgentSpec, request: RunRequest, state: RunState
    ) -> AsyncIterator[RunEvent]:
        provider = self.provider_for(agent)
        server = {t.spec.name: t for t in await self._server_tools.tools_for(agent)}
        _check_caller_tools(request, server)
        messages = initial_messages(agent, request)
        tool_choice = request.tool_choice or ToolChoice()
        tools = [t.spec for t in server.values()] + list(request.tools)
        if tool_choice.mode == "none":
            tools = []
        deadline = asyncio.get_running_loop().time() + self._limits.run_deadline_seconds
        state.model = agent.model
        for step_no in range(1, self._limits.max_steps + 1):
            call = model_request(agent, request, messages, tools, tool_choice)
            step = _Step()
            try:
                async with (
                    asyncio.timeout_at(deadline),
                    aclosing(self._model_call(provider, call, server, step, state)) as events,
                ):
                    async for event in events:
                        yield event
            except TimeoutError:
                yield self._close_step(step_no, agent, step, state)
                yield RunFinished("incomplete", "length", state.usage, "run_deadline")
                return
            yield self._close_step(step_no, agent, step, state)
            if step.caller_calls or not step.server_calls:
                yield _finished(step, state)
                return
            messages.append(_assistant_message(step))
            async for event in self._run_server_calls(step.server_calls, messages, deadline):
                yield event
            # After server tools ran, a forced choice has been honoured: let the model answer.
            tool_choice = ToolChoice("auto", tool_choice.allowed)
        yield RunFinished("incomplete", "length", state.usage, "max_steps")

    async def _model_call(
        self,
        provider: Provider,
        call: ModelRequest,
        server: dict[str, ServerTool],
        step: _Step,
        state: RunState,
    ) -> AsyncIterator[RunEvent]:
        state.pending_output_chars = 0
        server_indexes: set[int] = set()
        async with aclosing(provider.stream(call)) as upstream:
            async for event in upstream:
                self._route(event, server, server_indexes, step, state)
                if _visible(event, server_indexes):
                    yield event

    def _route(
        self,
        event: ModelEvent,
        server: dict[str, ServerTool],
        server_indexes: set[int],
        step: _Step,
        state: RunState,
    ) -> None:
        """Record one model event in the step (text, calls, usage, finish)."""
        if isinstance(event, TextDelta):
            step.text.append(event.text)
            state.pending_output_chars += len(event.text)
        elif isinstance(event, ReasoningDelta):
            step.reasoning.append(event.text)
            state.pending_output_chars += len(event.text)
        elif isinstance(event, ToolCallStart):
            if event.name in server:
                server_indexes.add(event.index)
        elif isinstance(event, ToolCallDelta):
            state.pending_output_chars += len(event.arguments_delta)
        elif isinstance(event, ToolCallEnd):
            self._check_arguments(event)
            tool_call = ToolCall(event.call_id, event.name, event.arguments)
            if event.index in server_indexes:
                step.server_calls.append((server[event.name], tool_call))
            else:
                step.caller_calls.append(tool_call)
        elif isinstance(event, UsageReport):
            step.usage, step.model = event.usage, event.model
        elif isinstance(event, Finish):
            step.finish = event.reason

    def _check_arguments(self, event: ToolCallEnd) -> None:
        if len(event.arguments.encode()) > self._limits.max_tool_argument_bytes:
            raise InvalidRequest(
                f"The model's arguments for tool '{event.name}' exceed "
                f"{self._limits.max_tool_argument_bytes} bytes.",
                code="tool_arguments_too_large",
            )

    def _close_step(
        self, step_no: int, agent: AgentSpec, step: _Step, state: RunState
    ) -> StepFinished:
        usage = step.usage or Usage(output_tokens=-(-state.pending_output_chars // CHARS_PER_TOKEN))
        finished = StepFinished(step_no, step.model or agent.model, usage)
        state.steps.append(finished)
        state.pending_output_chars = 0
        return finished

    async def _run_server_calls(
        self, calls: list[tuple[ServerTool, ToolCall]], messages: list[Message], deadline: float
    ) -> AsyncIterator[RunEvent]:
        for tool, call in calls:
            yield ServerToolStart(call.id, tool.server, tool.spec.name, call.arguments)
        timeout = self._limits.tool_timeout_seconds
        async with asyncio.timeout_at(deadline):
            results = await asyncio.gather(
                *(self._server_tools.call(tool, call.arguments, timeout) for tool, call in calls)
            )
        for (tool, call), result in zip(calls, results, strict=True):
            messages.append(_tool_message(call, result))
            yield ServerToolResult(
                call.id, tool.server, tool.spec.name, call.arguments, result.output, result.is_error
            )


def _visible(event: ModelEvent, server_indexes: set[int]) -> bool:
    """Whether the caller sees this event: not usage/finish, not a server tool's call."""
    if isinstance(event, TextDelta | ReasoningDelta):
        return True
    if isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd):
        return event.index not in server_indexes
    return False


def _check_caller_tools(request: RunRequest, server: dict[str, ServerTool]) -> None:
    offered = {t.name for t in request.tools} | set(server)
    for tool in request.tools:
        if tool.name in server:
            raise InvalidRequest(
                f"Tool '{tool.name}' collides with a tool of this agent.",
                code="tool_name_conflict",
                param="tools",
            )
    choice = request.tool_choice
    for name in (choice.allowed or ()) if choice else ():
        if name not in offered:
            raise InvalidRequest(
                f"tool_choice names '{name}', which is not among the tools.", param="tool_choice"
            )


def _assistant_message(step: _Step) -> Message:
    content = [TextPart("".join(step.text))] if step.text else []
    calls = [call for _, call in step.server_calls] + step.caller_calls
    return Message(role="assistant", content=content, tool_calls=calls)


def _tool_message(call: ToolCall, result: ToolResult) -> Message:
    return Message(role="tool", content=[TextPart(result.output)], tool_call_id=call.id)


def _finished(step: _Step, state: RunState) -> RunFinished:
    if step.finish == "length":
        return RunFinished("incomplete", "length", state.usage, "max_output_tokens")
    if step.finish == "content_filter":
        return RunFinished("incomplete", "content_filter", state.usage, "content_filter")
    reason: FinishReason = "tool_calls" if step.caller_calls else step.finish
    return RunFinished("completed", reason, state.usage)
