"""The SSE decoder must give the same events however the bytes are split."""

from __future__ import annotations

import time

import pytest

from gateway.framing.events import EventTooLarge, StreamEvent
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


# ---- the WHATWG interpretation rules, one case each -------------------------------------------------

WHATWG_CASES = [
    pytest.param(b"\xef\xbb\xbfdata: x\n\n", [StreamEvent(None, "x")], id="bom-stripped"),
    pytest.param(b"data: \xef\xbb\xbfx\n\n", [StreamEvent(None, "\ufeffx")], id="bom-kept-elsewhere"),
    pytest.param(b"event: ping\n\n", [], id="data-less-event-not-dispatched"),
    pytest.param(
        b"event: ping\n\ndata: x\n\n", [StreamEvent(None, "x")], id="event-name-reset-when-not-dispatched"
    ),
    pytest.param(b"data\n\n", [StreamEvent(None, "")], id="field-without-colon"),
    pytest.param(b"data\ndata\n\n", [StreamEvent(None, "\n")], id="two-empty-data-lines"),
    pytest.param(b"data:[DONE]\n\n", [StreamEvent(None, "[DONE]")], id="no-space-after-colon"),
    pytest.param(b"data:  x\n\n", [StreamEvent(None, " x")], id="only-one-space-removed"),
    pytest.param(b"event:ping\ndata:{}\n\n", [StreamEvent("ping", "{}")], id="event-without-space"),
    pytest.param(b"event\ndata: x\n\n", [StreamEvent(None, "x")], id="empty-event-name"),
    pytest.param(b"data: a\r\rdata: b\r\r", [StreamEvent(None, "a"), StreamEvent(None, "b")], id="cr-only"),
    pytest.param(b"data: a\r\ndata: b\r\n\r\n", [StreamEvent(None, "a\nb")], id="crlf"),
    pytest.param(b"data: a\rdata: b\n\r\n", [StreamEvent(None, "a\nb")], id="mixed-line-ends"),
    pytest.param(
        b": c\nid: 1\nretry: 5\nfoo: bar\ndata: x\n\n", [StreamEvent(None, "x")], id="ignored-fields"
    ),
    pytest.param(b"DATA: x\n\n", [], id="field-names-are-case-sensitive"),
    pytest.param(
        b"data: x\n\ndata: [DONE] \n\n",
        [StreamEvent(None, "x"), StreamEvent(None, "[DONE] ")],
        id="spaces-kept",
    ),
]


@pytest.mark.parametrize(("stream", "expected"), WHATWG_CASES)
@pytest.mark.parametrize("size", [1, 2, 1000])
def test_whatwg_interpretation(stream: bytes, expected: list[StreamEvent], size: int) -> None:
    decoder = SseDecoder()
    events = []
    for i in range(0, len(stream), size):
        events += decoder.feed(stream[i : i + size])
    assert events == expected
    assert not decoder.has_partial_event()
    assert decoder.flush() == []


@pytest.mark.parametrize(
    "tail",
    [b"data: [DON", b"data: x\n", b"event: ping\n", b"data: x\r", b"event: ping\r\n"],
)
def test_an_event_without_its_blank_line_is_partial_and_never_dispatched(tail: bytes) -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: 1\n\n" + tail) == [StreamEvent(None, "1")]
    assert decoder.flush() == []
    assert decoder.has_partial_event()


@pytest.mark.parametrize("tail", [b"", b": keep-alive\n", b": keep-al", b"id: 3\n", b"\n", b"\r"])
def test_comments_and_blank_lines_after_the_last_event_are_not_partial(tail: bytes) -> None:
    decoder = SseDecoder()
    decoder.feed(b"data: 1\n\n" + tail)
    assert not decoder.has_partial_event()


# ---- offsets, for a relay that passes bytes through -------------------------------------------------


def test_boundary_and_event_ends_are_stream_offsets() -> None:
    decoder = SseDecoder()
    first = b": hi\n\ndata: a\r\n\r\n"
    assert decoder.feed(first + b"event: e\ndata: b") == [StreamEvent(None, "a", len(first))]
    assert decoder.boundary == len(first)
    second = b"event: e\ndata: b\n\r"
    assert [e.end for e in decoder.feed(b"\n\r")] == [len(first + second)]
    assert decoder.boundary == len(first + second)
    decoder.feed(b"\n")  # the \n of the \r\n: in no complete event yet
    assert decoder.boundary == len(first + second)
    assert decoder.feed(b"data: c\n\n")[0].end == len(first + second + b"\ndata: c\n\n")


# ---- bounded, linear buffers -------------------------------------------------------------------------


def feed_all(decoder: SseDecoder, stream: bytes, size: int, into: list[StreamEvent]) -> None:
    for i in range(0, len(stream), size):
        into += decoder.feed(stream[i : i + size])


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_an_event_over_the_cap_raises_with_the_events_before_it(size: int) -> None:
    stream = b"data: small\n\n" + b"data: " + b"x" * 100 + b"\n\n"
    events: list[StreamEvent] = []
    with pytest.raises(EventTooLarge) as caught:
        feed_all(SseDecoder(max_event_bytes=64), stream, size, events)
    assert events + caught.value.events == [StreamEvent(None, "small")]
    assert caught.value.code == "upstream_event_too_large"


def test_an_event_at_the_cap_passes() -> None:
    event = b"data: " + b"x" * 56 + b"\n\n"  # 64 bytes, blank line included
    assert SseDecoder(max_event_bytes=64).feed(event) == [StreamEvent(None, "x" * 56)]
    with pytest.raises(EventTooLarge):
        SseDecoder(max_event_bytes=63).feed(event)


def test_comment_lines_without_a_blank_line_count_towards_the_cap() -> None:
    with pytest.raises(EventTooLarge):
        feed_all(SseDecoder(max_event_bytes=100), b": keep-alive\n" * 20, 13, [])


def test_a_huge_event_in_small_reads_takes_linear_time() -> None:
    """8 MiB in 1 KiB reads: re-copying the buffer per read (quadratic) took seconds; now milliseconds."""
    event = b"data: " + b"x" * (8 * 1024 * 1024) + b"\n\n"
    decoder = SseDecoder()
    started = time.perf_counter()
    events = []
    for i in range(0, len(event), 1024):
        events += decoder.feed(event[i : i + 1024])
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and len(events[0].data) == 8 * 1024 * 1024
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_one_event_per_read_gives_the_same_events_and_offsets() -> None:
    """Reads that are each one whole `data:` event take a shortcut; it must agree with the line loop."""
    reads = [b"data: a\n\n", b"data: \n\n", b"data:  b\n\n", b": c\n\n", b"data: d\n\n", b"data: e\n\n"]
    whole = SseDecoder().feed(b"".join(reads))
    decoder = SseDecoder()
    one_by_one = [event for read in reads for event in decoder.feed(read)]
    expected = [StreamEvent(None, "a"), StreamEvent(None, ""), StreamEvent(None, " b")]
    expected += [StreamEvent(None, "d"), StreamEvent(None, "e")]
    assert one_by_one == whole == expected
    assert [e.end for e in one_by_one] == [e.end for e in whole]
    assert decoder.boundary == len(b"".join(reads))
    with pytest.raises(EventTooLarge):
        SseDecoder(max_event_bytes=8).feed(b"data: abc\n\n")
