"""Agent graphs: the agents a run may reach, and the tools that reach them.

An agent's sub-agents are offered to its model as function tools named after each
sub-agent (its name, slugified) taking `{"input": string}`; its handoff targets as
`transfer_to_<slug>` tools without required parameters. Both are server-side tools:
the caller never sees them as calls to execute. `Graph` is shared by every run of one
request's tree: it holds the resolved agents (checked for the caller before the first
upstream call, runs/graph_access.py), the depth limit, the tree-wide count of model
calls, and how to open the spending of another agent's calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from agenthost.conversation import AgentSpec, ToolSpec
from agenthost.runtime.budget import CallBudget, Unmetered
from agenthost.runtime.tools import ServerTool

SUBAGENT_SERVER = "agenthost:subagent"
HANDOFF_SERVER = "agenthost:handoff"
HANDOFF_PREFIX = "transfer_to_"
log = logging.getLogger(__name__)
_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")
_MAX_TOOL_NAME = 64  # what OpenAI-compatible upstreams accept

SUBAGENT_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "What to ask this agent."}},
    "required": ["input"],
    "additionalProperties": False,
}
HANDOFF_PARAMETERS = {"type": "object", "properties": {}, "additionalProperties": False}


def _unmetered(_: AgentSpec) -> CallBudget:
    return Unmetered()


@dataclass(slots=True)
class Graph:
    """What every run of one request's tree shares."""

    agents: dict[str, AgentSpec]
    depth_limit: int = 3
    # The spending of one agent's calls (billing prices and labels them by that agent).
    budget_for: Callable[[AgentSpec], CallBudget] = _unmetered
    model_calls: int = 0  # across the whole tree, against the top-level agent's max_steps
    max_model_calls: int | None = None  # set by the top-level run
    deadline: float | None = None  # the top-level run's; no run of the tree outlives it

    def deeper(self, depth: int, agent: AgentSpec) -> bool:
        """Whether a run one level below `depth` may start; logs the limit when not
        (Chat Completions shows only `finish_reason: "length"`)."""
        if depth + 1 <= self.depth_limit:
            return True
        log.info(
            "agent graph depth limit %d reached calling agent %s: the run ends incomplete",
            self.depth_limit,
            agent.id,
        )
        return False

    def count_model_call(self) -> bool:
        """Count one model call of the tree; False when the tree may make no more."""
        self.model_calls += 1
        return self.max_model_calls is None or self.model_calls <= self.max_model_calls

    @classmethod
    def single(cls, agent: AgentSpec) -> Graph:
        return cls({agent.id: agent})


def slug(name: str) -> str:
    """An agent name as a tool name: lower case, [a-z0-9_-], never empty."""
    text = _NAME_CHARS.sub("_", name.lower()).strip("_-")
    return text or "agent"


def graph_tools(agent: AgentSpec, graph: Graph, taken: set[str]) -> dict[str, ServerTool]:
    """The agent's sub-agent and handoff tools by name; a name already `taken` (an MCP
    tool, another agent of the same name) gets a numbered suffix."""
    tools: dict[str, ServerTool] = {}
    used = set(taken)

    def unique(base: str) -> str:
        base = base[: _MAX_TOOL_NAME - 4]
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        return name

    for target_id in agent.subagents:
        target = graph.agents[target_id]
        description = target.description or f"Ask the agent '{target.name}'."
        spec = ToolSpec(unique(slug(target.name)), description, SUBAGENT_PARAMETERS)
        tools[spec.name] = ServerTool(SUBAGENT_SERVER, spec, remote_name=target_id)
    for target_id in agent.handoffs:
        target = graph.agents[target_id]
        description = f"Hand the conversation to the agent '{target.name}'." + (
            f" {target.description}" if target.description else ""
        )
        spec = ToolSpec(unique(HANDOFF_PREFIX + slug(target.name)), description, HANDOFF_PARAMETERS)
        tools[spec.name] = ServerTool(HANDOFF_SERVER, spec, remote_name=target_id)
    return tools
