"""What a trace says about model and tool calls (OpenTelemetry GenAI conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from agenthost.conversation import ModelRequest
from agenthost.observability import tracing
from agenthost.providers.base import Provider
from agenthost.runtime.steps import Step
from agenthost.runtime.tools import ServerTool

if TYPE_CHECKING:
    from opentelemetry.trace import Span


def model_call_attributes(provider: Provider, call: ModelRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": provider.system,
        "gen_ai.request.model": call.model,
        "agenthost.provider": provider.name,
    }
    if call.max_output_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = call.max_output_tokens
    if call.temperature is not None:
        attributes["gen_ai.request.temperature"] = call.temperature
    if tracing.record_content():
        messages = [
            {"role": m.role, "text": "".join(getattr(p, "text", "") for p in m.content)}
            for m in call.messages
        ]
        attributes["gen_ai.input.messages"] = orjson.dumps(messages).decode()
    return attributes


def end_model_call(span: Span | None, step: Step) -> None:
    """The upstream's reported usage and finish, then the span's end."""
    if span is None:
        return
    if step.usage is not None:  # as reported: the ledger keeps the validated figures
        for name, value in (
            ("gen_ai.usage.input_tokens", step.usage.input_tokens),
            ("gen_ai.usage.output_tokens", step.usage.output_tokens),
        ):
            if isinstance(value, int):
                span.set_attribute(name, value)
    if step.model:
        span.set_attribute("gen_ai.response.model", step.model)
    if step.finish:
        span.set_attribute("gen_ai.response.finish_reasons", [step.finish])
    if tracing.record_content():
        span.set_attribute("gen_ai.output.messages", "".join(step.text))
    span.end()


def tool_call_attributes(tool: ServerTool) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool.spec.name,
        "agenthost.mcp.server": tool.server,
    }
