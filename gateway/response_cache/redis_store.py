"""Cached answers in Redis, shared by every worker and replica: one key per answer, expiring at its
TTL (Redis's own). Redis bounds its memory itself (`maxmemory` and an LRU eviction policy). A call
gives up after REDIS_CALL_TIMEOUT_S, so a Redis that hangs cannot hold a request; what a failure
means (a miss) is cache.py's business."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.auth.limits import REDIS_CALL_TIMEOUT_S, REDIS_SOCKET_TIMEOUT_S
from gateway.response_cache.entry import CachedReply


class RedisStore:
    waits = True  # a put is a round trip: made after the answer left, not before

    def __init__(self, url: str, prefix: str = "gateway:rc:") -> None:
        try:
            import redis.asyncio as redis_asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise RuntimeError(
                "cache.store: redis needs the redis package: pip install 'llm-gateway[redis]'"
            ) from exc
        # one retry, at once (a pooled connection the server closed is replaced), as the limits store
        self._redis: Any = redis_asyncio.from_url(
            url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
        )
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
