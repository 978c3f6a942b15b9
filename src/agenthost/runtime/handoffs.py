"""Handoffs: a `transfer_to_<slug>` call passes the conversation to another agent.

The target's instructions, provider, model and tools replace the current agent's; what
comes along is what the caller sees of the conversation (the user's messages and the
visible answer so far), not the source agent's instructions or tool traffic. Only the
last handoff of a step counts. Caller-side function tools belong to the top-level agent
only, so the target runs without them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from agenthost.conversation import Message, RunRequest, TextPart, ToolCall
from agenthost.runtime.graph import HANDOFF_SERVER
from agenthost.runtime.steps import LimitReached
from agenthost.runtime.tools import ServerTool, ToolResult

if TYPE_CHECKING:
    from agenthost.runtime.loop import _Run


def handoff_result(run: _Run, tool: ServerTool) -> ToolResult:
    """What the source model is told; the switch itself happens after the step."""
    target = run.graph.agents[tool.remote_name]
    if not run.graph.deeper(run.depth, target):
        raise LimitReached("agent_graph_depth")
    return ToolResult(f"Transferred to {target.name}.", agent_id=target.id)


def last_handoff(run: _Run, calls: list[tuple[ServerTool, ToolCall]]) -> str | None:
    """The agent the step's last handoff call names (None: no handoff)."""
    chosen = None
    for tool, _ in calls:
        if tool.server == HANDOFF_SERVER:
            chosen = tool.remote_name
    return chosen


def handed_over(request: RunRequest, messages: list[Message]) -> RunRequest:
    """The request the target agent continues: the visible conversation, no caller tools."""
    visible: list[Message] = []
    for message in messages:
        if message.role == "user":
            visible.append(message)
        elif message.role == "assistant" and message.text():
            visible.append(Message(role="assistant", content=[TextPart(message.text())]))
    return dataclasses.replace(
        request, messages=visible, tools=[], tool_choice=None, max_tool_calls=None
    )
