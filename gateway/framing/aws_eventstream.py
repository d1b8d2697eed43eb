"""AWS's binary event stream (`application/vnd.amazon.eventstream`), decoded by botocore.

Each message becomes an event named by its `:event-type` header; an exception message is named by
its `:exception-type` (e.g. `throttlingException`); an error message by its `:error-code`, with
`{"message": <:error-message>}` as its data when its payload is empty. botocore is the `aws` extra.
"""

from __future__ import annotations

from typing import Any

from gateway import json_codec
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
            data = message.payload.decode("utf-8", errors="replace")
            if headers.get(":message-type") == "exception":
                name = headers.get(":exception-type", "exception")
            elif headers.get(":message-type") == "error":
                # an unmodeled error carries its message in headers, not in the payload
                name = headers.get(":error-code", "error")
                if not data.strip():
                    data = json_codec.dumps_str({"message": str(headers.get(":error-message") or name)})
            else:
                name = headers.get(":event-type", "event")
            events.append(StreamEvent(str(name), data))
        return events

    def has_partial_event(self) -> bool:
        return self._pending > 0
