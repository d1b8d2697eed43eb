"""The cache as a request meets it: a store that fails is a miss, never an error.

A `get` or `put` that raises (Redis down, slower than its timeout) is logged as
`response_cache_store_error`, at most once per LOG_INTERVAL_S (with how many were not logged since),
and the store is left alone for RECHECK_S: a store that hangs costs one timeout, not one per request.
A put to a store that waits on the network (Redis) is made in the background, after the answer left;
at most `max_pending` wait at once (more are dropped), and `close` gives them `drain_timeout` seconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal, Protocol

import structlog
from aiohttp import web

from gateway.response_cache.entry import CachedReply
from gateway.response_cache.memory_store import MemoryStore
from gateway.response_cache.redis_store import RedisStore
from gateway.store_failures import DRAIN_TIMEOUT_S, RECHECK_S, BackgroundWrites, FailureLog

if TYPE_CHECKING:
    from gateway.reload import RegistryHolder

log = structlog.get_logger("gateway.cache")

MAX_PENDING_PUTS = 1000

StoreOperation = Literal["get", "put"]


class CacheStore(Protocol):
    @property
    def waits(self) -> bool:
        """Whether its calls wait on the network (then a put is made in the background)."""

    async def get(self, key: str) -> CachedReply | None: ...

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None: ...

    async def close(self) -> None: ...


class ResponseCache:
    __slots__ = ("_clock", "_log", "_pending", "_resting_until", "_store", "max_entry_bytes")

    def __init__(
        self,
        store: CacheStore,
        max_entry_bytes: int,
        *,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = MAX_PENDING_PUTS,
        drain_timeout: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self._store = store
        self.max_entry_bytes = max_entry_bytes  # the largest answer kept (a stream records up to it)
        self._clock = clock
        self._pending = BackgroundWrites(max_pending, drain_timeout)
        self._resting_until = float("-inf")
        self._log = FailureLog(log, "response_cache_store_error", clock, redact)

    async def get(self, key: str) -> CachedReply | None:
        """The answer kept for `key`; None when there is none or the store cannot say."""
        if self._clock() < self._resting_until:
            return None
        try:
            return await self._store.get(key)
        except Exception as exc:
            self._failed("get", exc)
            return None

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        """Keep `reply` for `ttl` seconds: at once in memory, in the background for a store that
        waits (the client is not kept waiting on it)."""
        if reply.size > self.max_entry_bytes or self._clock() < self._resting_until:
            return
        if not self._store.waits:
            await self._put(key, reply, ttl)
            return
        if self._pending.full():
            self._failed("put", OverflowError(f"{self._pending.limit} puts already pending: one dropped"))
            return
        self._pending.start(self._put(key, reply, ttl))

    async def _put(self, key: str, reply: CachedReply, ttl: float) -> None:
        try:
            await self._store.put(key, reply, ttl)
        except Exception as exc:
            self._failed("put", exc)

    async def settled(self) -> None:
        """Wait for the background puts made so far (tests; shutdown)."""
        while len(self._pending):
            await self._pending.settled()

    def _failed(self, operation: StoreOperation, exc: BaseException) -> None:
        if not isinstance(exc, OverflowError):
            self._resting_until = self._clock() + RECHECK_S
        self._log(operation, exc)

    async def close(self) -> None:
        """Give pending puts `drain_timeout` to finish, cancel the rest, then close the store."""
        await self._pending.drain()
        await self._store.close()


RESPONSE_CACHE = web.AppKey("response_cache", ResponseCache)


def cache_context(
    holder: RegistryHolder, store: CacheStore | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's cleanup context for the cache: the store `cache:` names (or `store`, in tests), chosen
    at start (a reload keeps it), closed at shutdown."""

    async def response_cache(app: web.Application) -> AsyncIterator[None]:
        settings = holder.current.config.cache
        url = settings.redis_url
        chosen = store
        if chosen is None:  # (an empty MemoryStore is falsy: it has a length)
            if settings.store == "redis" and url:
                chosen = RedisStore(url)
            else:
                chosen = MemoryStore(settings.max_entries, settings.max_bytes)
        redact: Callable[[str], str] = (lambda text: text.replace(url, "<cache.redis_url>")) if url else str
        app[RESPONSE_CACHE] = cache = ResponseCache(chosen, settings.max_entry_bytes, redact=redact)
        yield
        await cache.close()

    return response_cache
