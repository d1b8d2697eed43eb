"""What every stream decoder produces: named events carrying text, whatever the framing; and how a
decoder says that the upstream's bytes cannot be framed at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

# `upstream.max_event_bytes`'s default: what a decoder holds of one event before it gives up
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """`event`: the framing's own name for the event (SSE `event:`, AWS `:event-type`), if any.
    `end`: the stream offset just past the event's last byte, where the framing knows it (SSE), so a
    relay can tell which bytes carried which event; not part of the event's identity."""

    event: str | None
    data: str
    end: int = field(default=0, compare=False)


class StreamFramingError(Exception):
    """The upstream's bytes cannot be framed into events: the stream cannot go on. `events` are the
    ones the same `feed` completed before the fault (relay them, then end the stream)."""

    code: ClassVar[str]
    outcome: ClassVar[Literal["too_large", "invalid"]]

    def __init__(self, message: str, events: Sequence[StreamEvent] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.events = list(events)


class EventTooLarge(StreamFramingError):
    """One event (an SSE event, an NDJSON line, an AWS message) is larger than the cap: holding it
    would let one upstream take as much memory as it likes."""

    code = "upstream_event_too_large"
    outcome = "too_large"


class InvalidFraming(StreamFramingError):
    """Bytes that are not the framing at all (AWS: bad lengths, a CRC mismatch, not an event stream)."""

    code = "upstream_invalid_event"
    outcome = "invalid"


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by this chunk (bytes may be split anywhere). Raises StreamFramingError."""

    def flush(self) -> list[StreamEvent]:
        """At the end of the stream: an event the framing lets end without a terminator (NDJSON's last
        line without its newline); most framings have none."""

    def has_partial_event(self) -> bool:
        """True when the bytes so far end in the middle of an event (a truncated stream)."""
