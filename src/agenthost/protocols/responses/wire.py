"""Open Responses request bodies (spec 2026-04-24), fields only; see decode.py for meaning.

Every field of `CreateResponseBody` is declared; anything else is a 400 naming it. Input
items are told apart by `type` (and, for messages, `role`); an item without `type` is a
message when it has a `role`, else an `item_reference`, as the spec's defaults say.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

MAX_TEXT = 10_485_760
ToolName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
CallId = Annotated[str, Field(min_length=1, max_length=64)]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- content parts --------------------------------------------------------------------


class InputText(_Wire):
    type: Literal["input_text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]


class InputImage(_Wire):
    type: Literal["input_image"]
    image_url: Annotated[str, Field(max_length=20_971_520)] | None = None
    detail: Literal["low", "high", "auto"] | None = None


class InputFile(_Wire):
    type: Literal["input_file"]
    filename: str | None = None
    file_data: Annotated[str, Field(max_length=33_554_432)] | None = None
    file_url: str | None = None


class InputVideo(_Wire):
    type: Literal["input_video"]
    video_url: str


class UrlCitation(_Wire):
    type: Literal["url_citation"]
    start_index: Annotated[int, Field(ge=0)]
    end_index: Annotated[int, Field(ge=0)]
    url: str
    title: str


class OutputText(_Wire):
    type: Literal["output_text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]
    annotations: list[UrlCitation] | None = None
    logprobs: list[dict[str, Any]] | None = None  # present when output items are replayed


class Refusal(_Wire):
    type: Literal["refusal"]
    refusal: Annotated[str, Field(max_length=MAX_TEXT)]


class SummaryText(_Wire):
    type: Literal["summary_text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]


class ReasoningText(_Wire):
    type: Literal["reasoning_text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]


UserPart = Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]
AssistantPart = Annotated[OutputText | Refusal, Field(discriminator="type")]
ToolOutputPart = Annotated[
    InputText | InputImage | InputFile | InputVideo, Field(discriminator="type")
]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


# --- input items ----------------------------------------------------------------------


class _MessageBase(_Wire):
    type: Literal["message"] = "message"
    id: str | None = None
    status: str | None = None


class UserMessage(_MessageBase):
    role: Literal["user"]
    content: Text | list[UserPart]


class SystemMessage(_MessageBase):
    role: Literal["system"]
    content: Text | list[InputText]


class DeveloperMessage(_MessageBase):
    role: Literal["developer"]
    content: Text | list[InputText]


class AssistantMessage(_MessageBase):
    role: Literal["assistant"]
    content: Text | list[AssistantPart]
    phase: Literal["commentary", "final_answer"] | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    id: str | None = None
    call_id: CallId
    name: ToolName
    arguments: str
    status: ItemStatus | None = None


class FunctionCallOutputItem(_Wire):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: CallId
    output: Text | list[ToolOutputPart]
    status: ItemStatus | None = None


class ItemReference(_Wire):
    type: Literal["item_reference"] | None = None
    id: str


class ReasoningItem(_Wire):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText]
    # The spec allows only null here; our own reasoning output items carry their text
    # as `reasoning_text` parts, so they are accepted when replayed as input.
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class CompactionItem(_Wire):
    type: Literal["compaction"]
    id: str | None = None
    encrypted_content: Annotated[str, Field(max_length=MAX_TEXT)]
    created_by: str | None = None


def _item_tag(value: Any) -> str | None:
    """Which item model a raw input item belongs to (see the module docstring)."""
    if isinstance(value, BaseModel):
        data: dict[str, Any] = {"type": getattr(value, "type", None)}
        data["role"] = getattr(value, "role", None)
    elif isinstance(value, dict):
        data = value
    else:
        return None
    kind = data.get("type")
    if kind is None:
        kind = "message" if "role" in data else "item_reference"
    if kind == "message":
        return f"message:{data.get('role')}"
    return str(kind)


InputItem = Annotated[
    Annotated[UserMessage, Tag("message:user")]
    | Annotated[SystemMessage, Tag("message:system")]
    | Annotated[DeveloperMessage, Tag("message:developer")]
    | Annotated[AssistantMessage, Tag("message:assistant")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[CompactionItem, Tag("compaction")],
    Discriminator(_item_tag),
]
MessageItem = UserMessage | SystemMessage | DeveloperMessage | AssistantMessage
ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])


# --- tools and options ----------------------------------------------------------------


class FunctionTool(_Wire):
    type: Literal["function"]
    name: ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class SpecificFunction(_Wire):
    type: Literal["function"]
    name: str


class AllowedTools(_Wire):
    type: Literal["allowed_tools"]
    tools: Annotated[list[SpecificFunction], Field(min_length=1, max_length=128)]
    mode: Literal["none", "auto", "required"] = "auto"


ToolChoiceWire = Literal["none", "auto", "required"] | SpecificFunction | AllowedTools


class TextFormat(_Wire):
    type: Literal["text"]


class JSONObjectFormat(_Wire):
    type: Literal["json_object"]


class JSONSchemaFormat(_Wire):
    type: Literal["json_schema"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    description: str | None = None
    strict: bool | None = None


FormatWire = Annotated[
    TextFormat | JSONObjectFormat | JSONSchemaFormat, Field(discriminator="type")
]


class TextOptions(_Wire):
    format: FormatWire | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningOptions(_Wire):
    effort: Literal["none", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["concise", "detailed", "auto"] | None = None


class StreamOptions(_Wire):
    include_obfuscation: bool | None = None


class CreateResponseRequest(_Wire):
    """The `CreateResponseBody` of the spec, every field declared."""

    model: str | None = None
    input: Text | list[InputItem] | None = None
    previous_response_id: str | None = None
    include: list[str] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoiceWire | None = None
    metadata: dict[str, str] | None = None
    text: TextOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    background: bool | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    reasoning: ReasoningOptions | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: Annotated[str, Field(max_length=64)] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    instructions: str | None = None
    store: bool | None = None
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None


class CompactRequest(_Wire):
    """The `CompactResponseMethodPublicBody` of the spec."""

    model: str
    input: Text | list[InputItem] | None = None
    previous_response_id: str | None = None
    instructions: str | None = None
    prompt_cache_key: Annotated[str, Field(max_length=64)] | None = None
