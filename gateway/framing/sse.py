"""Server-sent events: an incremental decoder for upstream streams and the encoder for clients.

The decoder follows the WHATWG event-stream interpretation
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
a UTF-8 BOM at the start of the stream is dropped; lines end with `\\r\\n`, `\\n` or `\\r`; a line
starting with `:` is a comment; a line without a colon is a field with an empty value; one space
after the colon is dropped; each `data` field appends its value and a `\\n` to the event's data; a
blank line dispatches the event (without its last `\\n`) unless its data is empty, and in both cases
forgets the event name. `id` and `retry` are ignored (the gateway does not reconnect). At the end of
the stream an event without its blank line is discarded, and `has_partial_event` says so.

Bytes can arrive split anywhere, even inside a UTF-8 sequence or between `\\r` and `\\n`. Buffers
grow linearly (the line in progress is a bytearray that new bytes are appended to, never a bytes
object re-copied per read), and one event (every byte from the blank line before it to its own) may
not exceed `max_event_bytes`: `EventTooLarge` is raised as soon as it does.

For a relay that passes the bytes through as they are, `boundary` is the stream offset after the
last blank line: the bytes before it are whole events, and each event's `end` is where it ends.
"""

from __future__ import annotations

import re

from gateway.framing.events import DEFAULT_MAX_EVENT_BYTES, EventTooLarge, StreamEvent

DONE_FRAME = b"data: [DONE]\n\n"

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")


class SseDecoder:
    __slots__ = ("_block_start", "_cr", "_data", "_event", "_fed", "_line", "_max", "_started")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._line = bytearray()  # the line in progress: the bytes after the last line end
        self._data: list[bytes | bytearray] = []  # the event's data lines, decoded once when it is dispatched
        self._event: str | None = None
        self._cr = False  # the last line ended with a \r: a \n right after it completes that line end
        self._started = False  # a BOM can only come first
        self._max = max_event_bytes
        self._fed = 0  # bytes fed so far
        self._block_start = 0  # where the current event's bytes began: just after the last blank line

    @property
    def boundary(self) -> int:
        """The stream offset after the last blank line: every byte before it belongs to a complete event
        (or to comments and blank lines between events)."""
        return self._block_start

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if (  # one whole `data: ...` event and nothing held (how most streams arrive): no line loop
            chunk.endswith(b"\n\n")
            and chunk.startswith(b"data: ")  # (so no BOM either)
            and not (self._line or self._data or self._cr or self._event)
            and chunk.find(b"\n", 6) == len(chunk) - 2
            and chunk.find(b"\r", 6) < 0
        ):
            self._started = True
            end = self._fed = self._fed + len(chunk)
            if end - self._block_start > self._max:
                raise EventTooLarge(self._too_large())
            self._block_start = end
            return [StreamEvent(None, chunk[6:-2].decode("utf-8", errors="replace"), end)]
        origin = self._fed  # the stream offset of buf[0]
        self._fed += len(chunk)
        pos = 0  # where the next line starts in buf
        if self._cr:
            self._cr = False
            if chunk[:1] == b"\n":
                pos = 1  # the \n of a \r\n split across two reads
        line = self._line
        buf: bytes | bytearray
        if line:  # a line in progress (it holds no line end): look for its end in the new bytes only
            scan = len(line)
            origin -= scan
            line += chunk
            buf = line
        else:
            buf, scan = chunk, pos
        events: list[StreamEvent] = []
        if not self._started:
            head = bytes(buf[pos : pos + 3])
            if len(head) < 3 and _BOM.startswith(head):  # maybe a BOM, maybe not: wait for more
                self._keep(buf, pos)
                return events
            self._started = True
            if head == _BOM:
                pos += 3
                scan = max(scan, pos)
        # \n line ends only (the usual): a loop with _line_at inlined for blank and data lines
        if buf.find(b"\r", scan) < 0:
            find = buf.find
            data = self._data
            while (end := find(b"\n", scan)) >= 0:
                scan = end + 1
                if end == pos:
                    if data:
                        self._dispatch(data, origin + scan, events)
                        data = self._data = []
                    self._event = None
                    self._block_start = origin + scan
                elif buf.startswith(b"data:", pos):
                    data.append(buf[pos + (6 if buf[pos + 5] == 0x20 else 5) : end])  # buf[end] is the \n
                elif buf[pos] != 0x3A:  # not a ':' comment
                    self._field(buf, pos, end)
                pos = scan
        else:
            for match in _LINE_END.finditer(buf, scan):
                end = match.start()
                self._line_at(buf, pos, end, origin + match.end(), events)
                pos = match.end()
            if pos == len(buf) and buf[-1] == 0x0D:
                self._cr = True
        self._keep(buf, pos)
        if self._fed - self._block_start > self._max:
            raise EventTooLarge(self._too_large(), events)
        return events

    def _keep(self, buf: bytes | bytearray, pos: int) -> None:
        """Keep buf[pos:], the line in progress."""
        if buf is self._line:
            if pos:
                del self._line[:pos]
        elif pos < len(buf):
            self._line += memoryview(buf)[pos:]

    def _line_at(
        self, buf: bytes | bytearray, pos: int, end: int, after: int, events: list[StreamEvent]
    ) -> None:
        """The line buf[pos:end], whose line end stops at stream offset `after`."""
        if end == pos:  # a blank line dispatches the event
            if self._data:
                self._dispatch(self._data, after, events)
                self._data = []
            self._event = None
            self._block_start = after
        elif buf.startswith(b"data:", pos):
            value_at = pos + (6 if buf.startswith(b" ", pos + 5) else 5)
            self._data.append(buf[value_at:end])
        elif buf[pos] != 0x3A:  # not a ':' comment
            self._field(buf, pos, end)

    def _dispatch(self, data: list[bytes | bytearray], after: int, events: list[StreamEvent]) -> None:
        if after - self._block_start > self._max:
            raise EventTooLarge(self._too_large(), events)
        text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", errors="replace")
        events.append(StreamEvent(self._event, text, after))

    def _field(self, buf: bytes | bytearray, pos: int, end: int) -> None:
        """A field other than `data: ...`: `event`, `data` without a colon (an empty data line);
        `id`, `retry` and unknown fields are ignored."""
        colon = buf.find(b":", pos, end)
        value: bytes | bytearray
        if colon < 0:
            name, value = buf[pos:end], b""
        else:
            value_at = colon + (2 if buf.startswith(b" ", colon + 1) else 1)  # buf[end] is a line end
            name, value = buf[pos:colon], buf[value_at:end]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace") or None

    def _too_large(self) -> str:
        return f"an upstream stream event is larger than {self._max} bytes"

    def flush(self) -> list[StreamEvent]:
        """At the end of the stream: nothing (an event without its blank line is discarded)."""
        return []

    def has_partial_event(self) -> bool:
        """True when the stream stopped in the middle of an event (a truncated upstream)."""
        if self._data or self._event is not None:
            return True
        line = self._line.strip()
        return bool(line) and not line.startswith(b":")


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"
