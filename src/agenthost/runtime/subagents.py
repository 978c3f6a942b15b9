"""Sub-agents: an agent called as a function tool runs as a fresh run of its own.

The sub-agent gets only the `input` its parent's model wrote (not the parent's history)
and runs with its own instructions, provider, model, MCP tools and limits, within the
tree's deadline and model-call count; its final text is the tool result. A limit that
ends the sub-agent's run (depth, model calls, deadline) ends the whole tree as
`incomplete`, so a cycle of agents cannot run on. Calls of one step run concurrently;
when one fails, the others are cancelled (their upstream requests closed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable
from contextlib import aclosing
from typing import TYPE_CHECKING, TypeVar

from agenthost.conversation import Message, RunRequest, TextPart, ToolCall
from agenthost.events import RunFinished, TextDelta
from agenthost.runtime.steps import LimitReached
from agenthost.runtime.tools import ServerTool, ToolResult

if TYPE_CHECKING:
    from agenthost.runtime.loop import AgentRunner, _Run

T = TypeVar("T")

# A sub-agent ended by one of these ends its whole tree (they bound cycles).
TREE_LIMITS = frozenset({"agent_graph_depth", "max_steps", "run_deadline"})


async def all_or_none(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Run the jobs concurrently; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _input(arguments: str) -> str | None:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return None
    value = parsed.get("input") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


async def run_subagent(
    runner: AgentRunner, run: _Run, tool: ServerTool, call: ToolCall
) -> ToolResult:
    """Run the sub-agent `tool` names on the call's input; its answer is the result."""
    graph = run.graph
    target = graph.agents[tool.remote_name]
    if not graph.deeper(run.depth, target):
        raise LimitReached("agent_graph_depth")
    text = _input(call.arguments)
    if text is None:
        return ToolResult('arguments must be {"input": string}', is_error=True)
    state = run.state.child(target)
    request = RunRequest(messages=[Message(role="user", content=[TextPart(text)])], streamed=False)
    answer: list[str] = []
    finished: RunFinished | None = None
    events = runner.run(target, request, state, run.caller, run.depth + 1)
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                answer.append(event.text)
            elif isinstance(event, RunFinished):
                finished = event
    if finished is not None and finished.incomplete_reason in TREE_LIMITS:
        raise LimitReached(finished.incomplete_reason)
    return ToolResult("".join(answer), agent_id=target.id, usage=state.usage)
