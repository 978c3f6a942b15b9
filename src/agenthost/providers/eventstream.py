"""The binary AWS event stream (`application/vnd.amazon.eventstream`) that Bedrock's
ConverseStream answers with, decoded incrementally from whatever chunks the socket gives.

A message is: a 12-byte prelude (total length, headers length, both big-endian uint32,
then the CRC32 of those 8 bytes), the headers (name length uint8, name, value type uint8,
value), the payload, and the CRC32 of everything before it. Both checksums are verified:
a corrupt frame is an upstream error, never half-read JSON.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agenthost.errors import ProviderError

_PRELUDE = 12
_CRC = 4
# A sane bound: Bedrock's events are small; a huge length means a corrupt or hostile frame.
MAX_MESSAGE = 16 * 1024 * 1024
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


class EventStreamError(ProviderError):
    """The bytes are not a valid event stream (bad checksum, length or header)."""


@dataclass(slots=True, frozen=True)
class EventMessage:
    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type", ""))

    @property
    def exception_type(self) -> str:
        return str(self.headers.get(":exception-type") or self.headers.get(":error-code") or "")


def _header_value(kind: int, data: bytes, at: int) -> tuple[Any, int]:
    if kind == 0:
        return True, at
    if kind == 1:
        return False, at
    if kind in _FIXED:
        fmt = _FIXED[kind]
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, data, at)
        return value, at + size
    if kind in (6, 7):
        (length,) = struct.unpack_from(">H", data, at)
        raw = data[at + 2 : at + 2 + length]
        if len(raw) != length:
            raise EventStreamError("event stream header value runs past its headers")
        return (raw.decode("utf-8") if kind == 7 else raw), at + 2 + length
    if kind == 9:
        raw = data[at : at + 16]
        if len(raw) != 16:
            raise EventStreamError("event stream header value runs past its headers")
        return uuid.UUID(bytes=raw), at + 16
    raise EventStreamError(f"event stream header of unknown type {kind}")


def parse_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    try:
        while at < len(data):
            length = data[at]
            name = data[at + 1 : at + 1 + length].decode("utf-8")
            at += 1 + length
            kind = data[at]
            headers[name], at = _header_value(kind, data, at + 1)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError("event stream headers are malformed") from exc
    return headers


class EventStreamDecoder:
    """Feed bytes as they arrive; get back every message completed by them, one at a
    time, so the messages before a damaged one are still delivered."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete (non-zero at the end: a cut stream)."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> Iterator[EventMessage]:
        self._buffer += chunk
        while len(self._buffer) >= _PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event stream prelude checksum mismatch")
            if total < _PRELUDE + _CRC + headers_length or total > MAX_MESSAGE:
                raise EventStreamError(f"event stream message length {total} is invalid")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - _CRC)
            if zlib.crc32(frame[: total - _CRC]) != message_crc:
                raise EventStreamError("event stream message checksum mismatch")
            headers = parse_headers(frame[_PRELUDE : _PRELUDE + headers_length])
            yield EventMessage(headers, frame[_PRELUDE + headers_length : total - _CRC])
