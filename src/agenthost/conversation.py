"""Protocol-neutral conversation types shared by protocols, runtime and providers.

A leaf module: it imports nothing of ours. Decoders turn wire requests into these,
the runtime builds a `ModelRequest` from them, and providers turn that into an
upstream call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image as a URL (`https://…` or a `data:` URL)."""

    url: str
    detail: str = "auto"


@dataclass(slots=True, frozen=True)
class FilePart:
    """A file as base64 data (`file_data`, possibly a data URL) or a URL."""

    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None


@dataclass(slots=True, frozen=True)
class AudioPart:
    data: str
    format: str


ContentPart = TextPart | ImagePart | FilePart | AudioPart


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A function call made by the model. `arguments` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Message:
    role: Role
    content: list[ContentPart] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True, frozen=True)
class ToolSpec:
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


ToolChoiceMode = Literal["none", "auto", "required"]


@dataclass(slots=True, frozen=True)
class ToolChoice:
    """`mode` plus an optional restriction to named tools (`allowed`)."""

    mode: ToolChoiceMode = "auto"
    allowed: tuple[str, ...] | None = None

    @staticmethod
    def named(name: str) -> ToolChoice:
        return ToolChoice(mode="required", allowed=(name,))


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    """Structured output. `type` is text, json_object or json_schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class ModelRequest:
    """One call to an upstream model: everything a provider needs, nothing more."""

    model: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The run's deadline on the event loop's clock; a provider that `bounds_waits` ends
    # its call by then (raising UpstreamTimeout) so the runtime needs no timer per event.
    deadline: float | None = None
    # The caller relays events as they come; when only the whole answer counts, a provider
    # reads without pausing between batches (see stream_interval_ms).
    streamed: bool = True
    # A user-provided provider's key: the caller's own, used instead of the configured one.
    api_key: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class RunRequest:
    """What a caller asked for, decoded from either interface.

    `None` means "not set by the request": the agent's own setting applies.
    """

    messages: list[Message]
    instructions: str | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # Provider hints (verbosity, service_tier, prompt_cache_key…) that OpenAI-compatible
    # upstreams understand and other providers ignore.
    upstream_hints: dict[str, Any] = field(default_factory=dict)
    streamed: bool = True  # the events reach the caller as they come (SSE, WebSocket)


@dataclass(slots=True, frozen=True)
class AgentSpec:
    """An agent as the runtime needs it (decoupled from the storage row)."""

    id: str
    name: str
    owner_id: str
    provider: str
    model: str
    instructions: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    mcp_servers: tuple[str, ...] = ()
    # (provider, model) pairs tried in order when the primary fails before its first token.
    fallbacks: tuple[tuple[str, str], ...] = ()
    description: str = ""
    # Agent graphs: agents called as tools, and agents the conversation may be handed to.
    subagents: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
