"""The cache as a request meets it: a store that fails is a miss, never an error.

A `get` or `put` that raises (Redis down, slower than its timeout) is logged as
`response_cache_store_error`, at most once per LOG_INTERVAL_S (with how many were not logged since),
and the store is left alone for RECHECK_S: a store that hangs costs one timeout, not one per request.
A put to a store that waits on the network (Redis) is made in the background, after the answer left;
at most `max_pending` wait at once (more are dropped), and `close` gives them `drain_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal, Protocol

import structlog
from aiohttp import web

from gateway.response_cache.entry import CachedReply
from gateway.response_cache.memory_store import MemoryStore
from gateway.response_cache.redis_store import RedisStore

if TYPE_CHECKING:
    from gateway.reload import RegistryHolder

log = structlog.get_logger("gateway.cache")

LOG_INTERVAL_S = 10.0
RECHECK_S = 1.0
MAX_PENDING_PUTS = 1000
DRAIN_TIMEOUT_S = 5.0

StoreOperation = Literal["get", "put"]


class CacheStore(Protocol):
    @property
    def waits(self) -> bool:
        """Whether its calls wait on the network (then a put is made in the background)."""

    async def get(self, key: str) -> CachedReply | None: ...

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None: ...

    async def close(self) -> None: ...


class ResponseCache:
    __slots__ = (
        "_clock",
        "_drain_timeout",
        "_log_after",
        "_max_pending",
        "_not_logged",
        "_pending",
        "_redact",
        "_resting_until",
        "_store",
        "max_entry_bytes",
    )

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
        self._redact = redact  # an error's text may carry the store's URL
        self._clock = clock
        self._max_pending = max_pending
        self._drain_timeout = drain_timeout
        self._pending: set[asyncio.Task[None]] = set()
        self._resting_until = float("-inf")
        self._log_after = float("-inf")
        self._not_logged = 0

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
        if len(self._pending) >= self._max_pending:
            self._failed("put", OverflowError(f"{self._max_pending} puts already pending: one dropped"))
            return
        task = asyncio.get_running_loop().create_task(self._put(key, reply, ttl))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, key: str, reply: CachedReply, ttl: float) -> None:
        try:
            await self._store.put(key, reply, ttl)
        except Exception as exc:
            self._failed("put", exc)

    async def settled(self) -> None:
        """Wait for the background puts made so far (tests; shutdown)."""
        while self._pending:
            await asyncio.wait(set(self._pending))

    def _failed(self, operation: StoreOperation, exc: BaseException) -> None:
        now = self._clock()
        if not isinstance(exc, OverflowError):
            self._resting_until = now + RECHECK_S
        if now < self._log_after:
            self._not_logged += 1
            return
        log.error(
            "response_cache_store_error",
            operation=operation,
            error=self._redact(repr(exc)),
            not_logged=self._not_logged,  # failures since the previous line
        )
        self._not_logged = 0
        self._log_after = now + LOG_INTERVAL_S

    async def close(self) -> None:
        """Give pending puts `drain_timeout` to finish, cancel the rest, then close the store."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self._drain_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
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
