"""Where stored responses live: this process's memory (bounded) or Redis (shared by every worker and
replica). Both keep opaque bytes under a response id for `ttl` seconds; what the bytes are, and what a
failing backend means for a request, is stored.py's business.

The memory backend is a least-recently-used map bounded by entry count and by bytes: storing past
either bound drops the least recently used first, and an entry larger than all the bytes allowed is
not kept. An expired entry is gone when it is next looked up (or when it reaches the old end of the
map). Redis bounds itself (its maxmemory policy); every key carries the TTL. A Redis call gives up
after REDIS_CALL_TIMEOUT_S, so a store that hangs cannot hold a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.expiring_lru import ExpiringLru
from gateway.redis_client import REDIS_CALL_TIMEOUT_S, redis_client


class ResponseBackend(Protocol):
    async def put(self, response_id: str, data: bytes) -> bool:
        """Keep `data` (False: too large to keep at all)."""

    async def get(self, response_id: str) -> bytes | None: ...

    async def delete(self, response_id: str) -> bool:
        """Whether there was such an entry."""

    async def close(self) -> None: ...


class MemoryResponses:
    """A bounded LRU map of this process (gateway/expiring_lru.py); `clock` (monotonic seconds) is
    injectable for TTL tests."""

    def __init__(
        self, ttl: float, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._entries: ExpiringLru[bytes] = ExpiringLru(max_entries, max_bytes, len, clock)

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes) kept now."""
        return len(self._entries), self._entries.bytes

    async def put(self, response_id: str, data: bytes) -> bool:
        return self.put_now(response_id, data)

    def put_now(self, response_id: str, data: bytes) -> bool:
        """`put` without a coroutine (nothing here waits): the store keeps a response at once (one over
        `max_bytes` is not kept)."""
        self._entries.pop(response_id)
        return self._entries.put(response_id, data, self._ttl)

    async def get(self, response_id: str) -> bytes | None:
        return self._entries.get(response_id)

    async def delete(self, response_id: str) -> bool:
        found = self._entries.get(response_id)  # (an expired one is gone already)
        self._entries.pop(response_id)
        return found is not None

    async def close(self) -> None:
        self._entries.clear()


class RedisResponses:
    """One Redis string per response (`<prefix><id>`), with the TTL."""

    def __init__(self, url: str, ttl: float, prefix: str = "gateway:resp:") -> None:
        self._redis: Any = redis_client(url, "responses.store")
        self._ttl_ms = max(1, round(ttl * 1000))
        self._prefix = prefix

    async def put(self, response_id: str, data: bytes) -> bool:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S):
            await self._redis.set(self._prefix + response_id, data, px=self._ttl_ms)
        return True

    async def get(self, response_id: str) -> bytes | None:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S):
            data: bytes | None = await self._redis.get(self._prefix + response_id)
        return data

    async def delete(self, response_id: str) -> bool:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S):
            removed = await self._redis.delete(self._prefix + response_id)
        return bool(removed)

    async def close(self) -> None:
        await self._redis.aclose()
