"""NDJSON and AWS event-stream decoding, however the bytes are split."""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from gateway.framing.aws_eventstream import AwsEventStreamDecoder
from gateway.framing.events import EventTooLarge, InvalidFraming, StreamEvent
from gateway.framing.ndjson import NdjsonDecoder
from tests.support.aws_eventstream import encode_message, event, exception

NDJSON = b'{"a":1}\n\n{"b":"caf\xc3\xa9"}\r\n{"done":true}\n'


@pytest.mark.parametrize("size", [1, 3, 8, len(NDJSON)])
def test_ndjson_lines(size: int) -> None:
    decoder = NdjsonDecoder()
    events = []
    for i in range(0, len(NDJSON), size):
        events += decoder.feed(NDJSON[i : i + size])
    assert events == [
        StreamEvent(None, '{"a":1}'),
        StreamEvent(None, '{"b":"café"}'),
        StreamEvent(None, '{"done":true}'),
    ]
    assert not decoder.has_partial_event()


def test_ndjson_partial_line() -> None:
    decoder = NdjsonDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [StreamEvent(None, '{"a":1}')]
    assert decoder.has_partial_event()
    assert decoder.flush() == []  # cut short: still a partial event
    assert decoder.has_partial_event()


def test_ndjson_last_line_without_newline_is_flushed_at_the_end() -> None:
    decoder = NdjsonDecoder()
    assert decoder.feed(b'{"a":1}\n{"done":true}') == [StreamEvent(None, '{"a":1}')]
    assert decoder.flush() == [StreamEvent(None, '{"done":true}')]
    assert not decoder.has_partial_event()
    assert decoder.flush() == []


STREAM = (
    event("messageStart", b'{"role":"assistant"}')
    + event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}')
    + exception("throttlingException", b'{"message":"slow down"}')
)


@pytest.mark.parametrize("size", [1, 5, 64, len(STREAM)])
def test_aws_eventstream_messages(size: int) -> None:
    decoder = AwsEventStreamDecoder()
    events = []
    for i in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[i : i + size])
    assert events == [
        StreamEvent("messageStart", '{"role":"assistant"}'),
        StreamEvent("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Hi"}}'),
        StreamEvent("throttlingException", '{"message":"slow down"}'),
    ]
    assert not decoder.has_partial_event()


def test_aws_eventstream_partial_frame() -> None:
    decoder = AwsEventStreamDecoder()
    assert decoder.feed(STREAM[:30]) == []
    assert decoder.has_partial_event()


def test_aws_eventstream_unmodeled_error_gets_its_message_from_headers() -> None:
    frame = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    assert AwsEventStreamDecoder().feed(frame) == [StreamEvent("InternalFailure", '{"message":"boom"}')]


def test_ndjson_line_over_the_cap_raises_with_the_lines_before_it() -> None:
    decoder = NdjsonDecoder(max_event_bytes=32)
    with pytest.raises(EventTooLarge) as caught:
        decoder.feed(b'{"a":1}\n{"b":"' + b"x" * 40 + b'"}\n')
    assert caught.value.events == [StreamEvent(None, '{"a":1}')]
    decoder = NdjsonDecoder(max_event_bytes=32)
    for _ in range(4):
        assert decoder.feed(b"x" * 8) == []
    with pytest.raises(EventTooLarge):  # no newline yet: refused as soon as it is too long
        decoder.feed(b"x")


def test_ndjson_huge_line_in_small_reads_takes_linear_time() -> None:
    line = b'{"x":"' + b"y" * (8 * 1024 * 1024) + b'"}\n'
    decoder = NdjsonDecoder()
    started = time.perf_counter()
    events = []
    for i in range(0, len(line), 1024):
        events += decoder.feed(line[i : i + 1024])
    elapsed = time.perf_counter() - started
    assert len(events) == 1
    assert elapsed < 1.0, f"{elapsed:.2f} s"


# ---- the AWS event stream: errors of its own, never botocore's -------------------------------------

FIRST = event("messageStart", b'{"role":"assistant"}')


def _corrupt(message: bytes, at: int) -> bytes:
    return message[:at] + bytes([message[at] ^ 0xFF]) + message[at + 1 :]


INVALID = [
    pytest.param(b'{"message":"not an event stream at all"}', id="json-body"),
    pytest.param(_corrupt(FIRST, 2), id="prelude-crc"),
    pytest.param(_corrupt(FIRST, len(FIRST) - 10), id="payload-crc"),
    pytest.param(_corrupt(FIRST, len(FIRST) - 1), id="message-crc"),
    pytest.param(
        struct.pack(">II", 8, 0) + struct.pack(">I", zlib.crc32(struct.pack(">II", 8, 0))), id="too-short"
    ),
    pytest.param(
        encode_message({":event-type": "x"}, b"")[:12] + b"\x05" * 30, id="headers-longer-than-message"
    ),
]


@pytest.mark.parametrize("garbage", INVALID)
@pytest.mark.parametrize("size", [1, 4096])
def test_aws_eventstream_invalid_bytes_raise_invalid_framing(garbage: bytes, size: int) -> None:
    events: list[StreamEvent] = []
    with pytest.raises(InvalidFraming) as caught:
        feed_all(AwsEventStreamDecoder(), FIRST + garbage, size, events)
    assert events + caught.value.events == [StreamEvent("messageStart", '{"role":"assistant"}')]
    assert caught.value.code == "upstream_invalid_event"


def feed_all(decoder: AwsEventStreamDecoder, stream: bytes, size: int, into: list[StreamEvent]) -> None:
    for i in range(0, len(stream), size):
        into += decoder.feed(stream[i : i + size])


def _raw_message(headers: bytes, payload: bytes) -> bytes:
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: bytes, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name + bytes([kind]) + value


def test_aws_eventstream_header_types() -> None:
    headers = b"".join(
        [
            _header(b"t", 0, b""),
            _header(b"f", 1, b""),
            _header(b"b", 2, b"\xff"),
            _header(b"s", 3, struct.pack(">h", -2)),
            _header(b"i", 4, struct.pack(">i", 7)),
            _header(b"l", 5, struct.pack(">q", 1 << 40)),
            _header(b"a", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            _header(b"ts", 8, struct.pack(">q", 1700000000000)),
            _header(b"u", 9, bytes(range(16))),
            _header(b":event-type", 7, struct.pack(">H", 5) + b"chunk"),
        ]
    )
    assert AwsEventStreamDecoder().feed(_raw_message(headers, b"{}")) == [StreamEvent("chunk", "{}")]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_header(b"x", 42, b""), id="unknown-type"),
        pytest.param(_header(b"x", 7, struct.pack(">H", 50) + b"short"), id="value-past-the-headers"),
        pytest.param(_header(b"\xff\xfe", 0, b""), id="name-not-utf8"),
        pytest.param(b"\x09ab", id="name-past-the-headers"),
    ],
)
def test_aws_eventstream_malformed_headers(headers: bytes) -> None:
    with pytest.raises(InvalidFraming):
        AwsEventStreamDecoder().feed(_raw_message(headers, b"{}"))


def test_aws_eventstream_message_over_the_cap_is_refused_from_its_prelude() -> None:
    big = event("contentBlockDelta", b"x" * 1000)
    decoder = AwsEventStreamDecoder(max_event_bytes=500)
    with pytest.raises(EventTooLarge) as caught:
        decoder.feed(FIRST + big[:12])  # the prelude is enough: its bytes are never held
    assert caught.value.events == [StreamEvent("messageStart", '{"role":"assistant"}')]
    assert caught.value.code == "upstream_event_too_large"
    assert AwsEventStreamDecoder(max_event_bytes=len(big)).feed(big)  # at the cap: fine


def test_aws_eventstream_huge_message_in_small_reads_takes_linear_time() -> None:
    """botocore's buffer re-copies itself per read: 4 MiB in 256-byte reads took seconds."""
    message = event("contentBlockDelta", b"x" * (4 * 1024 * 1024))
    decoder = AwsEventStreamDecoder()
    started = time.perf_counter()
    events = []
    for i in range(0, len(message), 256):
        events += decoder.feed(message[i : i + 256])
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and not decoder.has_partial_event()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
