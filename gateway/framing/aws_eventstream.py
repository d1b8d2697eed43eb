"""AWS's binary event stream (`application/vnd.amazon.eventstream`), decoded by botocore.

Each message becomes an event named by its `:event-type` header; an exception message is named by
its `:exception-type` (e.g. `throttlingException`). botocore is the optional `aws` extra.
"""

from __future__ import annotations

from typing import Any

from gateway.framing.events import StreamEvent


def _buffer() -> Any:
    try:
        from botocore.eventstream import EventStreamBuffer
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError(
            "the aws-eventstream framing needs botocore: pip install 'llm-gateway[aws]'"
        ) from exc
    return EventStreamBuffer()


class AwsEventStreamDecoder:
    __slots__ = ("_buffer", "_pending")

    def __init__(self) -> None:
        self._buffer = _buffer()
        self._pending = 0

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        self._buffer.add_data(chunk)
        self._pending += len(chunk)
        events = []
        for message in self._buffer:
            self._pending = 0
            headers = message.headers
            if headers.get(":message-type") == "exception":
                name = headers.get(":exception-type", "exception")
            elif headers.get(":message-type") == "error":
                name = headers.get(":error-code", "error")
            else:
                name = headers.get(":event-type", "event")
            events.append(StreamEvent(str(name), message.payload.decode("utf-8", errors="replace")))
        return events

    def has_partial_event(self) -> bool:
        return self._pending > 0
