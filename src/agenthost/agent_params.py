"""An agent's parameters (its sampling defaults and run limits): what each may be.

Checked when an agent is saved (web form, `agents create --params`), so a mistake is
refused there, and again when a run starts, so a value stored before these checks
existed fails the call with a 400 naming the parameter instead of a 500 mid-run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from agenthost.errors import InvalidRequest

Number = StrictInt | StrictFloat
ServerName = Annotated[str, Field(min_length=1, max_length=64)]
ToolName = Annotated[str, Field(min_length=1, max_length=128)]


class ResponseFormatParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: Annotated[str, Field(max_length=64)] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    temperature: Annotated[Number, Field(ge=0, le=2)] | None = None
    top_p: Annotated[Number, Field(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    seed: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    presence_penalty: Annotated[Number, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[Number, Field(ge=-2, le=2)] | None = None
    stop: (
        Annotated[str, Field(min_length=1, max_length=256)]
        | Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=4)]
        | None
    ) = None
    response_format: ResponseFormatParam | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    max_steps: Annotated[StrictInt, Field(ge=1, le=1_000)] | None = None
    max_tool_argument_bytes: Annotated[StrictInt, Field(ge=1, le=100_000_000)] | None = None
    run_deadline_seconds: Annotated[Number, Field(gt=0, le=86_400)] | None = None
    tool_timeout_seconds: Annotated[Number, Field(gt=0, le=3_600)] | None = None
    # MCP server → the only tools of it the agent offers (a server not named: all of them).
    mcp_tools: (
        Annotated[
            dict[ServerName, Annotated[list[ToolName], Field(max_length=1_000)]],
            Field(max_length=100),
        ]
        | None
    ) = None


KNOWN = tuple(AgentParams.model_fields)
EXPECTED = {
    "temperature": "a number from 0 to 2",
    "top_p": "a number from 0 to 1",
    "max_output_tokens": "a whole number from 1 to 1,000,000",
    "seed": "a whole number (64-bit)",
    "presence_penalty": "a number from -2 to 2",
    "frequency_penalty": "a number from -2 to 2",
    "stop": "a string, or a list of at most 4 strings, each 1 to 256 characters",
    "response_format": 'an object such as {"type": "json_schema", "name": …, "schema": {…}}',
    "reasoning_effort": "one of none, minimal, low, medium, high, xhigh",
    "max_steps": "a whole number from 1 to 1,000",
    "max_tool_argument_bytes": "a whole number from 1 to 100,000,000",
    "run_deadline_seconds": "a number of seconds above 0, at most 86,400",
    "tool_timeout_seconds": "a number of seconds above 0, at most 3,600",
    "mcp_tools": 'an object of MCP server → tool names, such as {"files": ["read"]}',
}


class InvalidAgentParams(InvalidRequest):
    code = "invalid_agent_parameter"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Agent parameter '{name}': {problem}", param=f"agent.params.{name}")
        self.name = name
        self.problem = problem


def check(params: Any) -> dict[str, Any]:
    """`params` as stored (unchanged), or `InvalidAgentParams` naming the first problem."""
    if not isinstance(params, dict):
        raise InvalidAgentParams("(all)", 'must be a JSON object such as {"temperature": 0.2}.')
    try:
        AgentParams.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "(all)"
        if name not in EXPECTED:
            raise InvalidAgentParams(name, f"unknown; known: {', '.join(KNOWN)}.") from None
        raise InvalidAgentParams(name, f"must be {EXPECTED[name]}.") from None
    return params
