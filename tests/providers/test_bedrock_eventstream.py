"""The AWS event-stream decoder on its own: messages split at every byte, several in one
chunk, checksums and lengths checked, typed headers, and exception messages mapped onto
our errors. Frames come from the fake upstream's encoder, itself checked against
botocore's parser so the two are not merely consistent with each other."""

from __future__ import annotations

import struct
import uuid
import zlib

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from agenthost.errors import ProviderError, UpstreamUnavailable
from agenthost.events import TextDelta
from agenthost.providers.bedrock_stream import BedrockStream
from agenthost.providers.eventstream import EventStreamDecoder, EventStreamError
from tests.fakes.bedrock_upstream import encode_message

HEADERS = {":event-type": "contentBlockDelta", ":message-type": "event"}


def _frame(text: str = "hi", **headers: str) -> bytes:
    payload = orjson.dumps({"contentBlockIndex": 0, "delta": {"text": text}})
    return encode_message(headers or HEADERS, payload)


def test_the_fake_frames_as_botocore_reads_them() -> None:
    reader = EventStreamBuffer()
    reader.add_data(_frame("x"))
    (message,) = list(reader)
    assert message.headers == HEADERS
    assert orjson.loads(message.payload)["delta"] == {"text": "x"}


def test_a_message_split_at_every_byte_is_decoded_once() -> None:
    frames = _frame("one") + _frame("two")
    decoder = EventStreamDecoder()
    got = [m for byte in range(len(frames)) for m in list(decoder.feed(frames[byte : byte + 1]))]
    assert [orjson.loads(m.payload)["delta"]["text"] for m in got] == ["one", "two"]
    assert got[0].event_type == "contentBlockDelta" and got[0].message_type == "event"
    assert decoder.pending == 0


def test_many_messages_in_one_chunk() -> None:
    decoder = EventStreamDecoder()
    got = list(decoder.feed(b"".join(_frame(str(n)) for n in range(50)) + _frame("tail")[:5]))
    assert len(got) == 50 and decoder.pending == 5


@pytest.mark.parametrize("where", ["prelude", "headers", "payload", "message_crc"])
def test_a_flipped_bit_anywhere_is_refused(where: str) -> None:
    frame = bytearray(_frame("checked"))
    at = {"prelude": 2, "headers": 14, "payload": len(frame) - 8, "message_crc": len(frame) - 1}
    frame[at[where]] ^= 0x01
    with pytest.raises(EventStreamError, match="checksum"):
        list(EventStreamDecoder().feed(bytes(frame)))


def test_messages_before_a_damaged_one_in_the_same_chunk_still_come_out() -> None:
    damaged = bytearray(_frame("bad"))
    damaged[-1] ^= 0x01
    messages = EventStreamDecoder().feed(_frame("one") + _frame("two") + bytes(damaged))
    got = [orjson.loads(next(messages).payload)["delta"]["text"] for _ in range(2)]
    assert got == ["one", "two"]
    with pytest.raises(EventStreamError, match="checksum"):
        next(messages)


def test_an_absurd_length_is_refused_before_waiting_for_it() -> None:
    prelude = struct.pack(">II", 2**31, 0)
    with pytest.raises(EventStreamError, match="length"):
        list(EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude))))
    short = struct.pack(">II", 8, 0)
    with pytest.raises(EventStreamError, match="length"):
        list(EventStreamDecoder().feed(short + struct.pack(">I", zlib.crc32(short))))


def test_every_header_type_is_read() -> None:
    ident = uuid.uuid4()
    raw = b"".join(
        [
            b"\x01t\x00",
            b"\x01f\x01",
            b"\x01b\x02" + struct.pack(">b", -3),
            b"\x01s\x03" + struct.pack(">h", -300),
            b"\x01i\x04" + struct.pack(">i", 70000),
            b"\x01l\x05" + struct.pack(">q", 2**40),
            b"\x01a\x06" + struct.pack(">H", 3) + b"\x00\x01\x02",
            b"\x01d\x08" + struct.pack(">q", 1700000000000),
            b"\x01u\x09" + ident.bytes,
        ]
    )
    prelude = struct.pack(">II", 16 + len(raw), len(raw))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw
    (message,) = list(EventStreamDecoder().feed(head + struct.pack(">I", zlib.crc32(head))))
    assert message.headers == {
        "t": True,
        "f": False,
        "b": -3,
        "s": -300,
        "i": 70000,
        "l": 2**40,
        "a": b"\x00\x01\x02",
        "d": 1700000000000,
        "u": ident,
    }
    assert message.payload == b""


def test_an_unknown_header_type_is_refused() -> None:
    raw = b"\x01x\x0a"
    prelude = struct.pack(">II", 16 + len(raw), len(raw))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw
    with pytest.raises(EventStreamError, match="unknown type"):
        list(EventStreamDecoder().feed(head + struct.pack(">I", zlib.crc32(head))))


@pytest.mark.parametrize(
    ("kind", "error", "retryable"),
    [
        ("throttlingException", UpstreamUnavailable, True),
        ("modelStreamErrorException", UpstreamUnavailable, True),
        ("internalServerException", UpstreamUnavailable, True),
        ("serviceUnavailableException", UpstreamUnavailable, True),
        ("validationException", ProviderError, False),
    ],
)
def test_exception_messages_become_our_errors(
    kind: str, error: type[ProviderError], retryable: bool
) -> None:
    headers = {":exception-type": kind, ":message-type": "exception"}
    frame = encode_message(headers, orjson.dumps({"message": "went wrong SECRETKEY"}))
    (message,) = list(EventStreamDecoder().feed(frame))
    state = BedrockStream("bedrock", ("SECRETKEY",))
    with pytest.raises(ProviderError) as caught:
        state.feed_message(message)
    assert type(caught.value) is error
    assert isinstance(caught.value, UpstreamUnavailable) == retryable
    assert caught.value.message == f"upstream bedrock failed mid-stream: {kind}: went wrong ***"


def test_text_deltas_and_usage_with_cache_counts() -> None:
    state = BedrockStream()
    (message,) = list(EventStreamDecoder().feed(_frame("hello")))
    assert state.feed_message(message) == [TextDelta("hello")]
    state.feed("messageStop", {"stopReason": "max_tokens"})
    usage = {"inputTokens": 10, "outputTokens": 4, "cacheReadInputTokens": 100}
    state.feed("metadata", {"usage": usage | {"cacheWriteInputTokens": 20}})
    report, finish = state.end("m")
    assert report.usage.input_tokens == 130  # type: ignore[union-attr]
    assert report.usage.cache_read_tokens == 100  # type: ignore[union-attr]
    assert report.usage.cache_write_tokens == 20  # type: ignore[union-attr]
    assert finish.reason == "length"  # type: ignore[union-attr]
