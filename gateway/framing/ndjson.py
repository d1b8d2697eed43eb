"""Newline-delimited JSON streams: one event per non-empty line."""

from __future__ import annotations

from gateway import json_codec
from gateway.framing.events import StreamEvent


class NdjsonDecoder:
    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        buffer = self._buffer + chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return [
            StreamEvent(None, line.decode("utf-8", errors="replace"))
            for line in (raw.strip() for raw in lines)
            if line
        ]

    def has_partial_event(self) -> bool:
        return bool(self._buffer.strip())

    def flush(self) -> list[StreamEvent]:
        """At the end of the stream: the last line when it came complete but without its newline
        (a line cut short is left in the buffer, so the stream still counts as truncated)."""
        line = self._buffer.strip()
        if not line:
            return []
        try:
            json_codec.loads(line)
        except json_codec.JSONDecodeError:
            return []
        self._buffer = b""
        return [StreamEvent(None, line.decode("utf-8", errors="replace"))]
