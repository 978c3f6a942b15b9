"""One model step of a run: what it said and asked for, and the rules applied to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from agenthost.conversation import (
    ContentPart,
    Message,
    RunRequest,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest
from agenthost.events import FinishReason, RunFinished, ToolCallEnd, Usage
from agenthost.runtime.tools import ServerTool, ToolResult
from agenthost.settings import RunLimits


class LimitReached(Exception):
    """A run limit was hit; the run ends as incomplete with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Step:
    """What one model call produced."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    server_calls: list[tuple[ServerTool, ToolCall]] = field(default_factory=list)
    caller_calls: list[ToolCall] = field(default_factory=list)
    argument_bytes: dict[int, int] = field(default_factory=dict)
    usage: Usage | None = None
    model: str | None = None
    finish: FinishReason = "stop"

    def add_argument_bytes(self, index: int, delta: str, limits: RunLimits) -> None:
        """Count a call's argument bytes as they stream; stop the model early when too big."""
        total = self.argument_bytes.get(index, 0) + len(delta.encode())
        self.argument_bytes[index] = total
        if total > limits.max_tool_argument_bytes:
            raise LimitReached("max_tool_argument_bytes")

    def add_call(self, end: ToolCallEnd, server: dict[str, ServerTool], limits: RunLimits) -> None:
        """Record a finished call: a server tool's when `server` has it, else the caller's."""
        if len(end.arguments.encode()) > limits.max_tool_argument_bytes:
            raise LimitReached("max_tool_argument_bytes")
        call = ToolCall(end.call_id, end.name, end.arguments)
        tool = server.get(end.name)
        if tool is not None:
            self.server_calls.append((tool, call))
        else:
            self.caller_calls.append(call)


def offered_tools(
    server: dict[str, ServerTool], request: RunRequest, choice: ToolChoice
) -> list[ToolSpec]:
    """The tools the model sees: none for `none`, else server + caller tools, restricted to
    `choice.allowed` when set (a hard constraint, not a hint)."""
    if choice.mode == "none":
        return []
    tools = [t.spec for t in server.values()] + list(request.tools)
    if choice.allowed is not None:
        allowed = set(choice.allowed)
        tools = [t for t in tools if t.name in allowed]
    return tools


def check_caller_tools(request: RunRequest, server: dict[str, ServerTool]) -> None:
    """400 when a caller tool shadows a server tool or tool_choice names an unknown tool."""
    for index, tool in enumerate(request.tools):
        if tool.name in server:
            raise InvalidRequest(
                f"Tool '{tool.name}' collides with a tool of this agent; rename it.",
                code="tool_name_conflict",
                param=f"tools[{index}]",
            )
    offered = {t.name for t in request.tools} | set(server)
    choice = request.tool_choice
    for name in (choice.allowed or ()) if choice else ():
        if name not in offered:
            raise InvalidRequest(
                f"tool_choice names '{name}', which is not among the tools.", param="tool_choice"
            )
    if choice is not None and choice.mode == "required" and not offered:
        raise InvalidRequest(
            "tool_choice is 'required' but there are no tools.", param="tool_choice"
        )


def assistant_message(step: Step) -> Message:
    content: list[ContentPart] = [TextPart("".join(step.text))] if step.text else []
    calls = [call for _, call in step.server_calls] + step.caller_calls
    return Message(role="assistant", content=content, tool_calls=calls)


def tool_message(call: ToolCall, result: ToolResult) -> Message:
    return Message(role="tool", content=[TextPart(result.output)], tool_call_id=call.id)


def finished(step: Step, usage: Usage) -> RunFinished:
    if step.caller_calls:
        return RunFinished("completed", "tool_calls", usage)
    if step.finish == "length":
        return RunFinished("incomplete", "length", usage, "max_output_tokens")
    if step.finish == "content_filter":
        return RunFinished("incomplete", "content_filter", usage, "content_filter")
    reason: FinishReason = "stop" if step.finish == "tool_calls" else step.finish
    return RunFinished("completed", reason, usage)
