"""Cached answers in this process: a least-recently-used map bounded by entries and by bytes, each
entry expiring at its TTL (gateway/expiring_lru.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.expiring_lru import ExpiringLru
from gateway.response_cache.entry import CachedReply


class MemoryStore:
    """`max_entries` answers and `max_bytes` of them at most: a new one pushes out the least
    recently used. `clock`: monotonic seconds (injectable in tests)."""

    waits = False  # its calls never suspend: a put is done before the answer leaves

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: ExpiringLru[CachedReply] = ExpiringLru(
            max_entries, max_bytes, lambda reply: reply.size, clock
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._entries.bytes

    async def get(self, key: str) -> CachedReply | None:
        return self._entries.get(key)

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        self._entries.put(key, reply, ttl)

    async def close(self) -> None:
        self._entries.clear()
