"""Builds one model call from an agent and a caller's request.

Precedence (documented in the README): the agent's instructions come first, then the
request's own instructions and system/developer messages; sampling settings in the
request win over the agent's defaults; the request's output limit is capped by the
agent's; the model is always the agent's.
"""

from __future__ import annotations

from typing import Any

from agenthost.conversation import (
    AgentSpec,
    Message,
    ModelRequest,
    ResponseFormat,
    RunRequest,
    TextPart,
    ToolChoice,
    ToolSpec,
)


def _pick(request_value: Any, params: dict[str, Any], key: str) -> Any:
    return request_value if request_value is not None else params.get(key)


def _cap(requested: int | None, agent_cap: Any) -> int | None:
    if isinstance(agent_cap, int) and agent_cap > 0:
        return min(requested, agent_cap) if requested is not None else agent_cap
    return requested


def _agent_response_format(params: dict[str, Any]) -> ResponseFormat | None:
    raw = params.get("response_format")
    if not isinstance(raw, dict):
        return None
    return ResponseFormat(
        type=raw.get("type", "text"),
        name=raw.get("name"),
        schema=raw.get("schema"),
        strict=raw.get("strict"),
    )


def initial_messages(agent: AgentSpec, request: RunRequest) -> list[Message]:
    messages: list[Message] = []
    if agent.instructions:
        messages.append(Message(role="system", content=[TextPart(agent.instructions)]))
    if request.instructions:
        messages.append(Message(role="system", content=[TextPart(request.instructions)]))
    messages.extend(request.messages)
    return messages


def model_request(
    agent: AgentSpec,
    request: RunRequest,
    messages: list[Message],
    tools: list[ToolSpec],
    tool_choice: ToolChoice,
) -> ModelRequest:
    params = agent.params
    stop = request.stop or list(params.get("stop") or [])
    return ModelRequest(
        model=agent.model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        temperature=_pick(request.temperature, params, "temperature"),
        top_p=_pick(request.top_p, params, "top_p"),
        max_output_tokens=_cap(request.max_output_tokens, params.get("max_output_tokens")),
        stop=stop,
        seed=_pick(request.seed, params, "seed"),
        presence_penalty=_pick(request.presence_penalty, params, "presence_penalty"),
        frequency_penalty=_pick(request.frequency_penalty, params, "frequency_penalty"),
        response_format=request.response_format or _agent_response_format(params),
        reasoning_effort=_pick(request.reasoning_effort, params, "reasoning_effort"),
        user=request.user,
        extra=dict(request.upstream_hints),
        streamed=request.streamed,
    )
