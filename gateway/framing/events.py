"""What every stream decoder produces: named events carrying text, whatever the framing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """`event`: the framing's own name for the event (SSE `event:`, AWS `:event-type`), if any."""

    event: str | None
    data: str


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by this chunk (bytes may be split anywhere)."""

    def has_partial_event(self) -> bool:
        """True when the bytes so far end in the middle of an event (a truncated stream)."""
