"""Newline-delimited JSON streams: one event per non-empty line.

The line in progress is a bytearray that new bytes are appended to (linear however the line is
split), and a line may not exceed `max_event_bytes`: `EventTooLarge` is raised as soon as it does.
"""

from __future__ import annotations

from gateway import json_codec
from gateway.framing.events import DEFAULT_MAX_EVENT_BYTES, EventTooLarge, StreamEvent


class NdjsonDecoder:
    __slots__ = ("_line", "_max")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._line = bytearray()  # the bytes after the last newline
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        line = self._line
        buf: bytes | bytearray
        if line:  # a line in progress: look for its end in the new bytes only
            scan = len(line)
            line += chunk
            buf = line
        else:
            buf, scan = chunk, 0
        events: list[StreamEvent] = []
        pos = 0
        find = buf.find
        while (end := find(b"\n", scan)) >= 0:
            if end - pos > self._max:
                raise EventTooLarge(self._too_large(), events)
            raw = buf[pos:end].strip()
            if raw:
                events.append(StreamEvent(None, raw.decode("utf-8", errors="replace")))
            pos = scan = end + 1
        if buf is line:
            del line[:pos]
        elif pos < len(buf):
            line += memoryview(buf)[pos:]
        if len(line) > self._max:
            raise EventTooLarge(self._too_large(), events)
        return events

    def _too_large(self) -> str:
        return f"an upstream stream line is longer than {self._max} bytes"

    def has_partial_event(self) -> bool:
        return bool(self._line.strip())

    def flush(self) -> list[StreamEvent]:
        """At the end of the stream: the last line when it came complete but without its newline
        (a line cut short is left in the buffer, so the stream still counts as truncated)."""
        line = self._line.strip()
        if not line:
            return []
        try:
            json_codec.loads(line)
        except json_codec.JSONDecodeError:
            return []
        self._line.clear()
        return [StreamEvent(None, line.decode("utf-8", errors="replace"))]
