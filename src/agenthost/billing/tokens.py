"""Prompt token counts without any tokenizer files: a hard bound and an estimate.

The real tokenizers (tiktoken's BPE files, Anthropic's, Gemini's) cannot be loaded here,
and the prompt is counted before the upstream says anything, so each model call gets two
numbers:

- **bound**: what no tokenizer can exceed. Every token covers at least one byte of the
  text's UTF-8 form (byte-level BPE, and SentencePiece with byte fallback, alike), so the
  UTF-8 length plus the markers chat templates add (`MESSAGE_OVERHEAD` per message,
  `TOOLS_OVERHEAD` once when tools are offered, for the tool-use prompt some upstreams add)
  is an upper bound. Admission reserves at the bound, and an upstream that reports more
  input than the bound is clamped to it. Images count `IMAGE_TOKENS` each (OpenAI's
  tiled high-detail maximum for a 2048×768 image is 1,445; Anthropic's ~1,600), files
  and audio their base64 length (at least their decoded byte count), a file given only by
  URL or id `FILE_TOKENS`.
- **estimate**: a calibrated guess, charged when an upstream reports no usable usage (a
  stream abandoned before its usage arrived, or usage that is missing or unreadable). Text
  is split the way byte-level BPE pre-tokenizers split it: a run of ASCII letters costs
  one token per started 4 letters, a digit one, any other visible ASCII character one, a
  non-ASCII character its UTF-8 length, and whitespace one token per started 4 characters
  beyond a single space or tab before a word (and its UTF-8 length when not ASCII). The
  estimate never exceeds the bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from agenthost.conversation import (
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    ModelRequest,
    ResponseFormat,
    TextPart,
    ToolSpec,
)

MESSAGE_OVERHEAD = 8  # role markers and separators around each message
TOOL_OVERHEAD = 16  # the wrapping of each tool definition
TOOLS_OVERHEAD = 600  # the tool-use instructions some upstreams add when tools are offered
IMAGE_TOKENS = 1_600
FILE_TOKENS = 32_000
REPLY_OVERHEAD = 8  # the assistant turn's opening markers

# The estimate counts with C-speed passes (bytes.translate, re.findall): a per-piece
# Python loop took seconds on a few megabytes of short words, on every request.
_LETTER_TOKENS = re.compile(rb"[A-Za-z]{1,4}")  # one match per started 4 letters of a run
_SPACE_TOKENS = re.compile(rb"[ \t\n\r\f\v]{1,4}")
_FREE_SPACES = re.compile(rb"(?<![ \t\n\r\f\v])[ \t](?![ \t\n\r\f\v])")  # lone space/tab
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_DIGITS = b"0123456789"
_SYMBOLS = bytes(c for c in range(0x21, 0x7F) if c not in _LETTERS + _DIGITS)
_CONTROLS = bytes(c for c in [*range(0x20), 0x7F] if c not in b" \t\n\r\f\v")
_NON_ASCII = bytes(range(0x80, 0x100))


def _count(data: bytes, members: bytes) -> int:
    return len(data) - len(data.translate(None, members))


def text_bound(text: str) -> int:
    """The most tokens any tokenizer can make of `text`: its UTF-8 length."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def text_estimate(text: str) -> int:
    """A calibrated estimate of the BPE tokens of `text` (at most `text_bound`)."""
    data = text.encode("utf-8", "surrogatepass")
    return (
        len(_LETTER_TOKENS.findall(data))
        + len(_SPACE_TOKENS.findall(data))
        - len(_FREE_SPACES.findall(data))
        + _count(data, _DIGITS)
        + _count(data, _SYMBOLS)
        + _count(data, _CONTROLS)
        + _count(data, _NON_ASCII)
    )


class PromptSize:
    """A prompt's token bound, and its estimate (`estimate <= bound`), counted only when
    first asked: most calls report usage and never need it."""

    __slots__ = ("_count", "_estimate", "bound")

    def __init__(self, bound: int, count: Callable[[], int]) -> None:
        self.bound = bound
        self._count: Callable[[], int] | None = count
        self._estimate = 0

    @property
    def estimate(self) -> int:
        if self._count is not None:
            self._estimate, self._count = min(self._count(), self.bound), None
        return self._estimate


class _Tally:
    """Adds up one count (`measure`) over the pieces of a prompt."""

    __slots__ = ("measure", "total")

    def __init__(self, measure: Callable[[str], int]) -> None:
        self.measure = measure
        self.total = 0

    def text(self, text: str | None) -> None:
        if text:
            self.total += self.measure(text)

    def fixed(self, tokens: int) -> None:
        self.total += tokens


def _add_message(tally: _Tally, message: Message) -> None:
    tally.fixed(MESSAGE_OVERHEAD)
    tally.text(message.name)
    tally.text(message.reasoning)
    tally.text(message.tool_call_id)
    for part in message.content:
        if isinstance(part, TextPart):
            tally.text(part.text)
        elif isinstance(part, ImagePart):
            tally.fixed(IMAGE_TOKENS)
        elif isinstance(part, FilePart):
            if part.file_data:
                tally.fixed(len(part.file_data))
            else:
                tally.fixed(FILE_TOKENS)
            tally.text(part.filename)
        elif isinstance(part, AudioPart):
            tally.fixed(len(part.data))
    for call in message.tool_calls:
        tally.fixed(MESSAGE_OVERHEAD)
        tally.text(call.id)
        tally.text(call.name)
        tally.text(call.arguments)


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode() if value else ""


def _add_tools(tally: _Tally, tools: list[ToolSpec]) -> None:
    if not tools:
        return
    tally.fixed(TOOLS_OVERHEAD)
    for tool in tools:
        tally.fixed(TOOL_OVERHEAD)
        tally.text(tool.name)
        tally.text(tool.description)
        tally.text(_json_text(tool.parameters))


def _add_format(tally: _Tally, response_format: ResponseFormat | None) -> None:
    if response_format is not None and response_format.type != "text":
        tally.fixed(MESSAGE_OVERHEAD)
        tally.text(response_format.name)
        tally.text(response_format.description)
        tally.text(_json_text(response_format.schema))


def _size(add: Callable[[_Tally], None]) -> PromptSize:
    def count(measure: Callable[[str], int]) -> int:
        tally = _Tally(measure)
        add(tally)
        tally.fixed(REPLY_OVERHEAD)
        return tally.total

    return PromptSize(count(text_bound), lambda: count(text_estimate))


def prompt_size(call: ModelRequest) -> PromptSize:
    """Bound and estimate of the input tokens of one model call, as it will be sent."""

    def add(tally: _Tally) -> None:
        for message in call.messages:
            _add_message(tally, message)
        _add_tools(tally, call.tools)
        _add_format(tally, call.response_format)

    return _size(add)


def messages_size(messages: list[Message], tools: list[ToolSpec]) -> PromptSize:
    """The same for a request before its model call is built (rate-limit accounting)."""

    def add(tally: _Tally) -> None:
        for message in messages:
            _add_message(tally, message)
        _add_tools(tally, tools)

    return _size(add)
