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
        self._data: list[str] = []
        self._event: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two reads
        self._pending_cr = False
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            self._pending_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[StreamEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            self._line(buffer[start:end], events)
            start = end + 1
        self._buffer = buffer[start:]
        return events

    def _line(self, raw: bytes, events: list[StreamEvent]) -> None:
        if not raw:
            if self._data or self._event is not None:
                events.append(StreamEvent(self._event, "\n".join(self._data)))
            self._data = []
            self._event = None
            return
        if raw[0] == 0x3A:  # ':' comment
            return
        line = raw.decode("utf-8", errors="replace")
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value

    def has_partial_event(self) -> bool:
        """True when the stream stopped in the middle of an event (a truncated upstream)."""
        return bool(self._buffer.strip() or self._data)


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"
