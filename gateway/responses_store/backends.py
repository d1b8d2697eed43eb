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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from gateway.redis_client import REDIS_CALL_TIMEOUT_S, redis_client


class ResponseBackend(Protocol):
    async def put(self, response_id: str, data: bytes) -> bool:
        """Keep `data` (False: too large to keep at all)."""

    async def get(self, response_id: str) -> bytes | None: ...

    async def delete(self, response_id: str) -> bool:
        """Whether there was such an entry."""

    async def close(self) -> None: ...


class MemoryResponses:
    """A bounded LRU map of this process; `clock` (monotonic seconds) is injectable for TTL tests."""

    def __init__(
        self, ttl: float, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # id -> (expires, data)
        self._bytes = 0

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes) kept now."""
        return len(self._entries), self._bytes

    async def put(self, response_id: str, data: bytes) -> bool:
        return self.put_now(response_id, data)

    def put_now(self, response_id: str, data: bytes) -> bool:
        """`put` without a coroutine (nothing here waits): the store keeps a response at once."""
        self._drop(response_id)
        if len(data) > self._max_bytes:
            return False
        entries = self._entries
        entries[response_id] = (self._clock() + self._ttl, data)
        self._bytes += len(data)
        while len(entries) > self._max_entries or self._bytes > self._max_bytes:
            _, (_, dropped) = entries.popitem(last=False)
            self._bytes -= len(dropped)
        return True

    async def get(self, response_id: str) -> bytes | None:
        found = self._entries.get(response_id)
        if found is None:
            return None
        expires, data = found
        if self._clock() >= expires:
            self._drop(response_id)
            return None
        self._entries.move_to_end(response_id)
        return data

    async def delete(self, response_id: str) -> bool:
        found = await self.get(response_id)  # (an expired one is gone already)
        self._drop(response_id)
        return found is not None

    def _drop(self, response_id: str) -> None:
        found = self._entries.pop(response_id, None)
        if found is not None:
            self._bytes -= len(found[1])

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0


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
