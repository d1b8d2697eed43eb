"""NDJSON and AWS event-stream decoding, however the bytes are split."""

from __future__ import annotations

import pytest

from gateway.framing.aws_eventstream import AwsEventStreamDecoder
from gateway.framing.events import StreamEvent
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
