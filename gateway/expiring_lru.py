"""A map of this process bounded by entries and by bytes, least recently used out first, each entry
expiring at its own deadline (checked when it is read: the bounds make expired ones leave in time).
The response cache's memory store and the stored responses' memory backend are both one."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringLru(Generic[V]):
    """`max_entries` values and `max_bytes` of them (as `size` counts a value) at most: a new one
    pushes out the least recently used. `clock`: monotonic seconds (injectable in tests)."""

    __slots__ = ("_clock", "_entries", "_max_bytes", "_max_entries", "_size", "bytes")

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        size: Callable[[V], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()  # key -> (expires, value)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        """The value, unless absent or expired (then dropped); it becomes the most recently used."""
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self._clock() >= expires:
            self.pop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V, ttl: float) -> bool:
        """Keep `value` for `ttl` seconds, evicting what the bounds require; False (nothing changed)
        when it alone is over `max_bytes`."""
        size = self._size(value)
        if size > self._max_bytes:
            return False
        self.pop(key)
        entries = self._entries
        entries[key] = (self._clock() + ttl, value)
        self.bytes += size
        while len(entries) > self._max_entries or self.bytes > self._max_bytes:
            _, (_, dropped) = entries.popitem(last=False)
            self.bytes -= self._size(dropped)
        return True

    def pop(self, key: str) -> V | None:
        """Drop `key` (expired or not): its value, None when there was none."""
        found = self._entries.pop(key, None)
        if found is None:
            return None
        self.bytes -= self._size(found[1])
        return found[1]

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
