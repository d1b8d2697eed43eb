"""Server-sent events: an incremental decoder for upstream streams and the encoder for clients.

The decoder accepts `\\n`, `\\r\\n` and `\\r` line endings, skips comment lines (`: keep-alive`),
joins multi-line `data:` fields with `\\n`, and dispatches an event on each blank line. Bytes can
arrive split anywhere, even inside a UTF-8 sequence or between `\\r` and `\\n`.
"""

from __future__ import annotations

from gateway.framing.events import StreamEvent

DONE_FRAME = b"data: [DONE]\n\n"


class SseDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []  # the event's data lines, decoded once when it is dispatched
        self._event: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two reads
        self._pending_cr = False
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            self._pending_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[StreamEvent] = []
        data = self._data
        find = buffer.find
        start = 0
        while (end := find(b"\n", start)) >= 0:
            if end == start:  # a blank line dispatches the event
                if data or self._event is not None:
                    text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", errors="replace")
                    events.append(StreamEvent(self._event, text))
                    data = self._data = []
                    self._event = None
            elif buffer.startswith(b"data:", start):
                value_at = start + (6 if buffer.startswith(b" ", start + 5) else 5)
                data.append(buffer[value_at:end])
            elif buffer[start] != 0x3A:  # not a ':' comment
                self._field(buffer[start:end])
            start = end + 1
        self._buffer = buffer[start:] if start < len(buffer) else b""
        return events

    def _field(self, raw: bytes) -> None:
        """A line other than `data: ...`: `event`, bare `data` (an empty data line); others are ignored."""
        name, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")

    def has_partial_event(self) -> bool:
        """True when the stream stopped in the middle of an event (a truncated upstream)."""
        return bool(self._buffer.strip() or self._data)


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"
