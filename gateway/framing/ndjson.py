"""Newline-delimited JSON streams: one event per non-empty line."""

from __future__ import annotations

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
