"""Cached answers in Redis, shared by every worker and replica: one key per answer, expiring at its
TTL (Redis's own). Redis bounds its memory itself (`maxmemory` and an LRU eviction policy). A call
gives up after REDIS_CALL_TIMEOUT_S, so a Redis that hangs cannot hold a request; what a failure
means (a miss) is cache.py's business."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.redis_client import REDIS_CALL_TIMEOUT_S, redis_client
from gateway.response_cache.entry import CachedReply


class RedisStore:
    waits = True  # a put is a round trip: made after the answer left, not before

    def __init__(self, url: str, prefix: str = "gateway:rc:") -> None:
        self._redis: Any = redis_client(url, "cache.store")
        self._prefix = prefix

    async def get(self, key: str) -> CachedReply | None:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S):
            data = await self._redis.get(self._prefix + key)
        return CachedReply.decode(data) if data is not None else None

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S):
            await self._redis.set(self._prefix + key, reply.encode(), px=max(1, round(ttl * 1000)))

    async def close(self) -> None:
        await self._redis.aclose()
