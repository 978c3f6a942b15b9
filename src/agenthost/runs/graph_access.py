"""Who may run an agent graph: every agent reachable from the requested one, resolved
breadth-first before anything goes upstream, must be callable by the caller's user.

A single agent the caller may not call makes the whole request look like an unknown
model (404 `model_not_found` naming the requested agent only): the caller learns nothing
about the hidden agent. Each lookup goes through the same cache as `model`, so a change
of sharing reaches the tree within that cache's bound.
"""

from __future__ import annotations

from collections import deque

from agenthost.auth.permissions import AgentAccess, model_not_found
from agenthost.auth.principal import Principal
from agenthost.conversation import AgentSpec
from agenthost.errors import NotFound
from agenthost.services import Services
from agenthost.storage.repositories import responses

# A graph is a handful of agents; anything larger is refused rather than walked.
MAX_GRAPH_AGENTS = 64


async def resolve_graph(
    access: AgentAccess, principal: Principal, root: AgentSpec
) -> dict[str, AgentSpec]:
    """Every agent reachable from `root` (itself included), by id; raises
    `model_not_found(root.id)` when any of them is hidden from the caller."""
    graph = {root.id: root}
    waiting = deque([root])
    while waiting:
        agent = waiting.popleft()
        for target in (*agent.subagents, *agent.handoffs):
            if target in graph:
                continue
            if len(graph) >= MAX_GRAPH_AGENTS:
                raise model_not_found(root.id)
            try:
                graph[target] = await access.resolve(principal, target, entry=False)
            except NotFound:
                raise model_not_found(root.id) from None
            waiting.append(graph[target])
    return graph


async def continuing_agent(
    services: Services, principal: Principal, root: AgentSpec, previous_id: str | None
) -> AgentSpec:
    """The agent a continuation runs: the one that answered `previous_id` last when a
    handoff moved the conversation to it from `root` (else `root`). Agents without
    handoffs cost no read here."""
    if previous_id is None or not root.handoffs:
        return root
    async with services.db.session() as session:
        row = await responses.get_owned(
            session, previous_id, principal.user_id, principal.agent_scope
        )
    answered = row.answered_by if row is not None else None
    if answered is None or answered == root.id:
        return root
    graph = await resolve_graph(services.access, principal, root)
    return graph.get(answered, root)
