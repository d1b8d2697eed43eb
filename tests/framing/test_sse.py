"""The SSE decoder must give the same events however the bytes are split."""

from __future__ import annotations

import pytest

from gateway.framing.events import StreamEvent
from gateway.framing.sse import SseDecoder, encode_data

STREAM = (
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n'
    b": keep-alive comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b"event: ping\ndata:{}\n\n"
    b"data: caf\xc3\xa9\n\n"
    b"id: 7\nretry: 100\ndata: [DONE]\r\r"
)
EXPECTED = [
    StreamEvent("message_start", '{"a":1}'),
    StreamEvent(None, "line one\nline two"),
    StreamEvent("ping", "{}"),
    StreamEvent(None, "café"),
    StreamEvent(None, "[DONE]"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_are_independent_of_chunking(size: int) -> None:
    decoder = SseDecoder()
    events = []
    for i in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[i : i + size])
    assert events == EXPECTED
    assert not decoder.has_partial_event()


def test_a_stream_cut_mid_event_is_reported_as_partial() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"b"') == [StreamEvent(None, '{"a":1}')]
    assert decoder.has_partial_event()
    decoder = SseDecoder()
    decoder.feed(b"data: complete line but no blank line\n")
    assert decoder.has_partial_event()


def test_encode_data() -> None:
    assert encode_data(b'{"x":1}') == b'data: {"x":1}\n\n'
