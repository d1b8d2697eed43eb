"""The gateway's access events (`request`), captured from a gateway serving in another thread.

The access event is logged after the response has gone out, so a client can have its answer before
the event exists: `wait_for(count)` blocks on a condition until that many have been logged (or fails
after a timeout) instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

WAIT = 10.0


class AccessEvents:
    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
        """A structlog processor: keeps every `request` event, drops everything."""
        if event.get("event") == "request":
            with self._changed:
                self._events.append(dict(event))
                self._changed.notify_all()
        raise structlog.DropEvent

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._events) >= count, timeout=WAIT)
            assert arrived, f"{len(self._events)} access events after {WAIT}s, expected {count}"
            return list(self._events)


@contextmanager
def access_events() -> Iterator[AccessEvents]:
    """Every access event logged while inside (structlog's processors replaced as
    structlog.testing.capture_logs replaces them, and put back)."""
    capture = AccessEvents()
    processors = structlog.get_config()["processors"]
    saved = list(processors)
    processors.clear()
    processors.append(capture)
    structlog.configure(processors=processors)
    try:
        yield capture
    finally:
        processors.clear()
        processors.extend(saved)
        structlog.configure(processors=processors)
