"""A deterministic provider for tests and benchmarks, configured by `providers.<name>.script`.

By default it echoes (`"echo: " + last user text`). Script keys: `text` (fixed reply),
`tokens` (a reply of N "tok" words), `ttft_ms` / `itl_ms` (pacing), `reasoning`,
`usage` (fixed counts), `tool_calls` ([{name, arguments}]), `fail`
(`before_first_token` | `mid_stream`) with `fail_status`.

Lines of the last user message override the script for one request:
`!call NAME JSON`, `!fail before|mid`, `!tokens N`, `!sleep MS` (time to first token).

Tool calls are made only when the request offers the tool and the last message is not a
tool result; after one it answers `"result: <tool output>"`, so an agent loop ends.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agenthost.conversation import Message, ModelRequest
from agenthost.errors import ConfigError, ProviderError, UpstreamUnavailable
from agenthost.events import (
    Finish,
    FinishReason,
    ModelEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.settings import ProviderSettings

FailMode = Literal["before_first_token", "mid_stream"]
_PIECE = re.compile(r"\s*\S+")
_DIRECTIVE = re.compile(r"^!(call|fail|tokens|sleep)(?:\s+(.*))?$")
_FAIL_WORDS: dict[str, FailMode] = {"before": "before_first_token", "mid": "mid_stream"}


def _json_object_text(value: Any) -> str:
    """Tool arguments as JSON text; they must be a JSON object (text or mapping)."""
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return value
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    raise ValueError("must be a JSON object or its text")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScriptToolCall(_Strict):
    name: str = Field(min_length=1)
    arguments: str = "{}"

    @field_validator("arguments", mode="before")
    @classmethod
    def _arguments(cls, value: Any) -> str:
        return _json_object_text(value)


class ScriptUsage(_Strict):
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    reasoning_tokens: int = Field(0, ge=0)


class Script(_Strict):
    """The validated `script` mapping of a scripted provider."""

    text: str | None = None
    tokens: int | None = Field(None, ge=0, le=1_000_000)
    ttft_ms: float = Field(0.0, ge=0)
    itl_ms: float = Field(0.0, ge=0)
    reasoning: str | None = None
    usage: ScriptUsage | None = None
    tool_calls: list[ScriptToolCall] = Field(default_factory=list)
    fail: FailMode | None = None
    fail_status: int = Field(503, ge=100, le=599)


def load_script(name: str, raw: dict[str, Any]) -> Script:
    """Validate `raw`; errors name the key, e.g. `providers.test.script.ttft_ms`."""
    try:
        return Script.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item["loc"])
            problems.append(f"providers.{name}.script.{where}: {item['msg']}")
        raise ConfigError("config error: " + "; ".join(problems)) from exc


@dataclass(slots=True)
class _Overrides:
    """What the last user message asks for, and its text without directive lines."""

    text: str = ""
    calls: list[ScriptToolCall] | None = None
    fail: FailMode | None = None
    tokens: int | None = None
    sleep_ms: float | None = None


def _bad_directive(line: str, why: str) -> ProviderError:
    return ProviderError(f"scripted: bad directive {line!r}: {why}", status=400)


def _parse_directives(text: str) -> _Overrides:
    found = _Overrides()
    kept: list[str] = []
    for line in text.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            kept.append(line)
            continue
        kind, arg = match.group(1), (match.group(2) or "").strip()
        try:
            _apply_directive(found, kind, arg)
        except (ValueError, KeyError) as exc:
            raise _bad_directive(line, str(exc)) from exc
    found.text = "\n".join(kept).strip()
    return found


def _apply_directive(found: _Overrides, kind: str, arg: str) -> None:
    if kind == "call":
        name, _, arguments = arg.partition(" ")
        if not name:
            raise ValueError("needs a tool name")
        call = ScriptToolCall(name=name, arguments=_json_object_text(arguments.strip() or "{}"))
        found.calls = [*(found.calls or []), call]
    elif kind == "fail":
        found.fail = _FAIL_WORDS[arg]
    elif kind == "tokens":
        found.tokens = max(0, int(arg))
    else:
        found.sleep_ms = max(0.0, float(arg))


@dataclass(slots=True)
class _Plan:
    """One request's answer: the events before usage, then how it ends."""

    events: list[ModelEvent] = field(default_factory=list)
    finish: FinishReason = "stop"
    fail: FailMode | None = None
    ttft: float = 0.0
    itl: float = 0.0
    output_chunks: int = 0
    reasoning_chunks: int = 0


def _pieces(text: str) -> list[str]:
    """Token-ish chunks: words, each with the whitespace before it."""
    pieces = _PIECE.findall(text)
    tail = text[len("".join(pieces)) :]
    if pieces and tail:
        pieces[-1] += tail
    return pieces or ([text] if text else [])


def _words(message: Message) -> int:
    count = len(message.text().split())
    return count + sum(1 + len(c.arguments.split()) for c in message.tool_calls)


class ScriptedProvider(Provider):
    """Answers from its script and in-band directives; no network, fully deterministic."""

    system = "agenthost_scripted"

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._script = load_script(name, config.script)

    def supports_json_schema(self) -> bool:
        return False

    async def health(self) -> ProviderHealth:
        return ProviderHealth(ok=True, detail="scripted")

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        plan = self._plan(request)
        if plan.ttft:
            await asyncio.sleep(plan.ttft)
        if plan.fail == "before_first_token":
            raise UpstreamUnavailable(
                f"scripted provider {self.name} failed before the first token",
                status=self._script.fail_status,
            )
        cut = max(1, len(plan.events) // 2) if plan.fail == "mid_stream" else None
        for number, event in enumerate(plan.events):
            if number == cut:
                break
            if number and plan.itl:
                await asyncio.sleep(plan.itl)
            yield event
        if cut is not None:
            raise ProviderError(
                f"scripted provider {self.name} failed mid-stream", status=self._script.fail_status
            )
        yield UsageReport(self._usage(request, plan), model=request.model)
        yield Finish(plan.finish)

    def _plan(self, request: ModelRequest) -> _Plan:
        users = [m for m in request.messages if m.role == "user"]
        found = _parse_directives(users[-1].text() if users else "")
        script = self._script
        sleep_ms = found.sleep_ms if found.sleep_ms is not None else script.ttft_ms
        plan = _Plan(fail=found.fail or script.fail, ttft=sleep_ms / 1000, itl=script.itl_ms / 1000)
        results = _trailing_tool_results(request.messages)
        calls = _offered(request, script.tool_calls if found.calls is None else found.calls)
        if results is None and calls:
            _add_calls(plan, calls, _prior_calls(request.messages))
            return plan
        if results is not None:
            text = "result: " + "; ".join(results)
        elif found.tokens is not None:
            text = " ".join(["tok"] * found.tokens)
        elif script.text is not None:
            text = script.text
        elif script.tokens is not None:
            text = " ".join(["tok"] * script.tokens)
        else:
            text = "echo: " + found.text
        _add_text(plan, _pieces(script.reasoning or ""), _pieces(text), request.max_output_tokens)
        return plan

    def _usage(self, request: ModelRequest, plan: _Plan) -> Usage:
        fixed = self._script.usage
        if fixed is not None:
            return Usage(**fixed.model_dump())
        return Usage(
            input_tokens=sum(_words(m) for m in request.messages),
            output_tokens=plan.output_chunks,
            reasoning_tokens=plan.reasoning_chunks,
        )


def _trailing_tool_results(messages: list[Message]) -> list[str] | None:
    """The outputs of the tool messages that end the conversation, or None."""
    results: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message.text())
    return list(reversed(results)) if results else None


def _offered(request: ModelRequest, calls: list[ScriptToolCall]) -> list[ScriptToolCall]:
    if request.tool_choice.mode == "none":
        return []
    names = {t.name for t in request.tools}
    if request.tool_choice.allowed is not None:
        names &= set(request.tool_choice.allowed)
    return [c for c in calls if c.name in names]


def _prior_calls(messages: list[Message]) -> int:
    # Numbering continues across the conversation so ids never repeat in one history.
    return sum(len(m.tool_calls) for m in messages)


def _add_calls(plan: _Plan, calls: list[ScriptToolCall], prior: int) -> None:
    for index, call in enumerate(calls):
        call_id = f"call_{prior + index + 1}"
        plan.events.append(ToolCallStart(index, call_id, call.name))
        middle = max(1, len(call.arguments) // 2)
        # Two argument deltas, so consumers' accumulation is exercised.
        for part in (call.arguments[:middle], call.arguments[middle:]):
            if part:
                plan.events.append(ToolCallDelta(index, call_id, part))
                plan.output_chunks += 1
        plan.events.append(ToolCallEnd(index, call_id, call.name, call.arguments))
    plan.finish = "tool_calls"


def _add_text(plan: _Plan, reasoning: list[str], text: list[str], limit: int | None) -> None:
    if limit is not None and len(reasoning) + len(text) > limit:
        # max_output_tokens counts reasoning first, as upstream models do.
        reasoning = reasoning[:limit]
        text = text[: max(0, limit - len(reasoning))]
        plan.finish = "length"
    plan.events.extend(ReasoningDelta(piece) for piece in reasoning)
    plan.events.extend(TextDelta(piece) for piece in text)
    plan.reasoning_chunks = len(reasoning)
    plan.output_chunks = len(reasoning) + len(text)
