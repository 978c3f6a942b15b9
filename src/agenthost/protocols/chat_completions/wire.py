"""Chat Completions request body (OpenAI API 2.3.0), fields only; see decode.py for meaning."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextContent(_Wire):
    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] = "auto"


class ImageContent(_Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Wire):
    data: str
    format: Literal["wav", "mp3"]


class AudioContent(_Wire):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Wire):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FileContent(_Wire):
    type: Literal["file"]
    file: FileRef


class RefusalContent(_Wire):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[
    TextContent | ImageContent | AudioContent | FileContent, Field(discriminator="type")
]
AssistantPart = Annotated[TextContent | RefusalContent, Field(discriminator="type")]


class SystemMessage(_Wire):
    role: Literal["system"]
    content: str | list[TextContent]
    name: str | None = None


class DeveloperMessage(_Wire):
    role: Literal["developer"]
    content: str | list[TextContent]
    name: str | None = None


class UserMessage(_Wire):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class FunctionCall(_Wire):
    name: str = Field(min_length=1)
    arguments: str


class ToolCallWire(_Wire):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class AudioRef(_Wire):
    id: str


class AssistantMessage(_Wire):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallWire] | None = None
    function_call: FunctionCall | None = None
    audio: AudioRef | None = None
    reasoning_content: str | None = None
    # Sent back by clients that replay `message.model_dump()`; carries nothing for the model.
    annotations: list[dict[str, Any]] | None = None


class ToolMessage(_Wire):
    role: Literal["tool"]
    content: str | list[TextContent]
    tool_call_id: str = Field(min_length=1)


class FunctionMessage(_Wire):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Wire):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Wire):
    type: Literal["function"]
    function: FunctionDefinition


class CustomTool(_Wire):
    type: Literal["custom"]
    custom: dict[str, Any]


Tool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class AllowedToolsSpec(_Wire):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class AllowedToolsChoice(_Wire):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedToolsSpec


class NamedCustomChoice(_Wire):
    type: Literal["custom"]
    custom: NamedFunction


ToolChoiceWire = (
    Literal["none", "auto", "required"]
    | Annotated[
        NamedToolChoice | AllowedToolsChoice | NamedCustomChoice, Field(discriminator="type")
    ]
)


class JSONSchemaFormat(_Wire):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextFormat(_Wire):
    type: Literal["text"]


class JSONObjectFormat(_Wire):
    type: Literal["json_object"]


class JSONSchemaResponseFormat(_Wire):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormatWire = Annotated[
    TextFormat | JSONObjectFormat | JSONSchemaResponseFormat, Field(discriminator="type")
]


class StreamOptions(_Wire):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionRequest(_Wire):
    """Every field of OpenAI's CreateChatCompletionRequest; decode.py applies or rejects each."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: ToolChoiceWire | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatWire | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    store: bool | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    safety_identifier: str | None = None
    moderation: dict[str, Any] | None = None
