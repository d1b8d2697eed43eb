"""Cached answers in this process: a least-recently-used map bounded by entries and by bytes, each
entry expiring at its TTL (checked when it is read; the LRU bounds make expired ones leave in time)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.response_cache.entry import CachedReply


class MemoryStore:
    """`max_entries` answers and `max_bytes` of them at most: a new one pushes out the least
    recently used. `clock`: monotonic seconds (injectable in tests)."""

    waits = False  # its calls never suspend: a put is done before the answer leaves

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedReply]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedReply | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, reply = found
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return reply

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        if reply.size > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl, reply)
        self.bytes += reply.size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, reply = self._entries.pop(key)
        self.bytes -= reply.size

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0
