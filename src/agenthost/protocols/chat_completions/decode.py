"""Chat Completions request → `RunRequest`. Unsupported values are rejected, never ignored."""

from __future__ import annotations

from agenthost.conversation import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ResponseFormat,
    RunRequest,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest
from agenthost.protocols.chat_completions import wire

MAX_METADATA_PAIRS = 16
MAX_STOP_SEQUENCES = 4


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_value", param=param)


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' {why}", code="unsupported_parameter", param=param)


def _check_unsupported(body: wire.ChatCompletionRequest) -> None:
    if body.n not in (None, 1):
        raise _unsupported("n", "must be 1: agents return one choice.")
    if body.logit_bias:
        raise _unsupported("logit_bias", "is not supported by agents.")
    if body.logprobs or body.top_logprobs:
        param = "logprobs" if body.logprobs else "top_logprobs"
        raise _unsupported(param, "is not supported by agents.")
    if body.modalities and "audio" in body.modalities:
        raise _unsupported("modalities", "supports only ['text'].")
    if body.audio is not None:
        raise _unsupported("audio", "is not supported: agents answer in text.")
    for name in ("prediction", "web_search_options", "moderation", "prompt_cache_options"):
        if getattr(body, name) is not None:
            raise _unsupported(name, "is not supported by agents.")
    if body.functions is not None or body.function_call is not None:
        param = "functions" if body.functions is not None else "function_call"
        raise _unsupported(param, "is deprecated: use 'tools' and 'tool_choice'.")
    if body.store:
        raise _unsupported("store", "is not supported for chat completions; use the Responses API.")
    if body.stream_options is not None and not body.stream:
        raise _invalid(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )


def _text(content: str | list[wire.TextContent] | None) -> list[ContentPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    return [TextPart(part.text) for part in content]


def _user_parts(content: str | list[wire.UserPart]) -> list[ContentPart]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[ContentPart] = []
    for part in content:
        if isinstance(part, wire.TextContent):
            parts.append(TextPart(part.text))
        elif isinstance(part, wire.ImageContent):
            parts.append(ImagePart(part.image_url.url, part.image_url.detail))
        elif isinstance(part, wire.AudioContent):
            parts.append(AudioPart(part.input_audio.data, part.input_audio.format))
        else:
            parts.append(FilePart(part.file.filename, part.file.file_data, None, part.file.file_id))
    return parts


def _assistant(msg: wire.AssistantMessage, index: int) -> Message:
    if isinstance(msg.content, list):
        text = "".join(
            p.text if isinstance(p, wire.TextContent) else p.refusal for p in msg.content
        )
    else:
        text = msg.content or msg.refusal or ""
    calls = [ToolCall(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or []]
    if msg.function_call is not None:
        calls.append(
            ToolCall(f"call_legacy_{index}", msg.function_call.name, msg.function_call.arguments)
        )
    content: list[ContentPart] = [TextPart(text)] if text else []
    return Message("assistant", content, calls, name=msg.name, reasoning=msg.reasoning_content)


def _message(msg: wire.Message, index: int) -> Message:
    if isinstance(msg, wire.SystemMessage | wire.DeveloperMessage):
        return Message(msg.role, _text(msg.content), name=msg.name)
    if isinstance(msg, wire.UserMessage):
        if isinstance(msg.content, str) and not msg.content.strip() or msg.content == []:
            raise _invalid(
                f"messages[{index}].content must not be empty.", param=f"messages[{index}].content"
            )
        return Message("user", _user_parts(msg.content), name=msg.name)
    if isinstance(msg, wire.AssistantMessage):
        return _assistant(msg, index)
    if isinstance(msg, wire.ToolMessage):
        return Message("tool", _text(msg.content), tool_call_id=msg.tool_call_id)
    # Deprecated `function` role: a function result without a call id.
    return Message(
        "tool", _text(msg.content), tool_call_id=f"call_legacy_{msg.name}", name=msg.name
    )


def _answered_calls_only(messages: list[Message]) -> list[Message]:
    """A `tool` message must answer a call of an earlier assistant message: an orphan
    result is refused (as OpenAI does) rather than sent upstream to confuse the model."""
    calls: set[str] = set()
    for index, message in enumerate(messages):
        calls.update(call.id for call in message.tool_calls)
        if message.role != "tool" or message.name is not None:  # `function` role: no ids
            continue
        if message.tool_call_id not in calls:
            raise _invalid(
                f"messages[{index}] is a tool result for '{message.tool_call_id}', which no "
                "earlier assistant message's tool_calls contains.",
                param=f"messages[{index}].tool_call_id",
            )
    return messages


def _tools(tools: list[wire.Tool] | None) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools or []):
        if isinstance(tool, wire.CustomTool):
            raise _invalid(
                "Custom tools are not supported; use function tools.", param=f"tools[{i}].type"
            )
        fn = tool.function
        if fn.name in seen:
            raise _invalid(f"Duplicate tool name '{fn.name}'.", param=f"tools[{i}].function.name")
        seen.add(fn.name)
        specs.append(ToolSpec(fn.name, fn.description, fn.parameters, fn.strict))
    return specs


def _tool_choice(choice: wire.ToolChoiceWire | None, tools: list[ToolSpec]) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return ToolChoice(mode=choice)
    if isinstance(choice, wire.NamedToolChoice):
        return ToolChoice.named(choice.function.name)
    if isinstance(choice, wire.AllowedToolsChoice):
        names: list[str] = []
        for entry in choice.allowed_tools.tools:
            name = (entry.get("function") or {}).get("name") or entry.get("name")
            if not isinstance(name, str):
                raise _invalid(
                    "Each allowed tool needs a function name.", param="tool_choice.allowed_tools"
                )
            names.append(name)
        return ToolChoice(mode=choice.allowed_tools.mode, allowed=tuple(names))
    raise _invalid("Custom tools are not supported.", param="tool_choice")


def _response_format(fmt: wire.ResponseFormatWire | None) -> ResponseFormat | None:
    if fmt is None or isinstance(fmt, wire.TextFormat):
        return None
    if isinstance(fmt, wire.JSONObjectFormat):
        return ResponseFormat(type="json_object")
    spec = fmt.json_schema
    return ResponseFormat("json_schema", spec.name, spec.schema_, spec.strict, spec.description)


def _stop(stop: str | list[str] | None) -> list[str]:
    values = [stop] if isinstance(stop, str) else list(stop or [])
    if len(values) > MAX_STOP_SEQUENCES:
        raise _invalid(f"'stop' allows at most {MAX_STOP_SEQUENCES} sequences.", param="stop")
    return values


def _max_tokens(body: wire.ChatCompletionRequest) -> int | None:
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise _invalid(
            "Set only one of 'max_tokens' and 'max_completion_tokens'.", param="max_tokens"
        )
    return body.max_completion_tokens or body.max_tokens


HINTS = ("verbosity", "service_tier", "prompt_cache_key", "prompt_cache_retention")


def _hints(body: wire.ChatCompletionRequest) -> dict[str, object]:
    return {name: getattr(body, name) for name in HINTS if getattr(body, name) is not None}


def decode(body: wire.ChatCompletionRequest) -> RunRequest:
    _check_unsupported(body)
    if body.metadata is not None and len(body.metadata) > MAX_METADATA_PAIRS:
        raise _invalid("'metadata' allows at most 16 pairs.", param="metadata")
    tools = _tools(body.tools)
    choice = _tool_choice(body.tool_choice, tools)
    return RunRequest(
        streamed=bool(body.stream),
        messages=_answered_calls_only([_message(m, i) for i, m in enumerate(body.messages)]),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls,
        temperature=body.temperature,
        top_p=body.top_p,
        max_output_tokens=_max_tokens(body),
        stop=_stop(body.stop),
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        response_format=_response_format(body.response_format),
        reasoning_effort=body.reasoning_effort,
        user=body.user or body.safety_identifier,
        metadata=dict(body.metadata or {}),
        upstream_hints=_hints(body),
    )
