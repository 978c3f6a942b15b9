"""How sub-agents and handoff targets are offered to the model."""

from __future__ import annotations

from agenthost.conversation import AgentSpec
from agenthost.runtime.graph import Graph, graph_tools, slug


def spec(agent_id: str, name: str, **links: tuple[str, ...]) -> AgentSpec:
    return AgentSpec(agent_id, name, "owner", "fake", "m", description=f"{name} helps", **links)


def test_slugs_are_tool_names() -> None:
    assert slug("Research Assistant (EU)") == "research_assistant_eu"
    assert slug("   ") == "agent" and slug("ÄÖ") == "agent"
    assert slug("a-b_c") == "a-b_c"


def test_tools_get_unique_names_and_the_sub_agents_description() -> None:
    one, two = spec("agent_1", "Helper"), spec("agent_2", "helper")
    parent = spec("agent_0", "Boss", subagents=("agent_1", "agent_2"), handoffs=("agent_1",))
    graph = Graph({a.id: a for a in (parent, one, two)})
    tools = graph_tools(parent, graph, taken={"helper"})  # an MCP tool already has the name
    assert list(tools) == ["helper_2", "helper_3", "transfer_to_helper"]
    first = tools["helper_2"]
    assert first.remote_name == "agent_1" and first.spec.description == "Helper helps"
    assert first.spec.parameters is not None
    assert first.spec.parameters["required"] == ["input"]
    handoff = tools["transfer_to_helper"].spec.parameters
    assert handoff is not None and "required" not in handoff


def test_the_depth_limit_allows_exactly_its_levels() -> None:
    agent = spec("agent_1", "A")
    graph = Graph({agent.id: agent}, depth_limit=2)
    assert graph.deeper(0, agent) and graph.deeper(1, agent) and not graph.deeper(2, agent)
