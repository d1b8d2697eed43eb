"""The cache as requests meet it: a store that fails is a miss (logged, then left alone a while),
never an error; a store that waits on the network is written after the answer, in the background."""

from __future__ import annotations

import asyncio
import time

import structlog

from gateway.response_cache.cache import ResponseCache
from gateway.response_cache.entry import CachedReply
from gateway.response_cache.memory_store import MemoryStore
from gateway.store_failures import LOG_INTERVAL_S, RECHECK_S

REPLY = CachedReply(False, b'{"ok":true}')
URL = "redis://:secret@10.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class DownStore:
    """A Redis that is down: every call fails, naming its URL."""

    waits = True

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: str) -> CachedReply | None:
        self.calls += 1
        raise ConnectionError(f"Error connecting to {URL}")

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        self.calls += 1
        raise ConnectionError(f"Error connecting to {URL}")

    async def close(self) -> None:
        return None


class HeldStore(MemoryStore):
    """A store whose puts wait for `release` (a slow network)."""

    waits = True

    def __init__(self) -> None:
        super().__init__(100, 10_000)
        self.release = asyncio.Event()

    async def put(self, key: str, reply: CachedReply, ttl: float) -> None:
        await self.release.wait()
        await super().put(key, reply, ttl)


async def test_a_failing_get_is_a_miss_logged_once_then_the_store_rests() -> None:
    clock, store = Clock(), DownStore()
    cache = ResponseCache(store, 1000, clock=clock, redact=lambda text: text.replace(URL, "<url>"))
    with structlog.testing.capture_logs() as logs:
        assert await cache.get("k") is None
        assert await cache.get("k") is None  # resting: the store is not asked
        assert store.calls == 1
        clock.now += RECHECK_S
        assert await cache.get("k") is None  # asked again, failed again: not logged (interval)
        assert store.calls == 2
        clock.now += LOG_INTERVAL_S
        assert await cache.get("k") is None
    errors = [log for log in logs if log["event"] == "response_cache_store_error"]
    assert len(errors) == 2
    assert (
        errors[0]["operation"] == "get"
        and "<url>" in errors[0]["error"]
        and "secret" not in errors[0]["error"]
    )
    assert errors[1]["not_logged"] == 1


async def test_a_failing_put_is_logged_not_raised() -> None:
    store = DownStore()
    cache = ResponseCache(store, 1000, clock=Clock())
    with structlog.testing.capture_logs() as logs:
        await cache.put("k", REPLY, 60)
        await cache.settled()
    assert [log["operation"] for log in logs if log["event"] == "response_cache_store_error"] == ["put"]


async def test_a_put_to_a_store_that_waits_does_not_hold_the_caller() -> None:
    store = HeldStore()
    cache = ResponseCache(store, 1000)
    await cache.put("k", REPLY, 60)  # returns at once
    assert await cache.get("k") is None
    store.release.set()
    await cache.settled()
    assert await cache.get("k") == REPLY


async def test_a_memory_put_is_done_before_the_caller_goes_on() -> None:
    cache = ResponseCache(MemoryStore(10, 1000), 1000)
    await cache.put("k", REPLY, 60)
    assert await cache.get("k") == REPLY


async def test_an_answer_over_max_entry_bytes_is_not_kept() -> None:
    cache = ResponseCache(MemoryStore(10, 1000), max_entry_bytes=REPLY.size - 1)
    await cache.put("k", REPLY, 60)
    assert await cache.get("k") is None


async def test_puts_past_max_pending_are_dropped_and_logged() -> None:
    store = HeldStore()
    cache = ResponseCache(store, 1000, max_pending=1)
    with structlog.testing.capture_logs() as logs:
        await cache.put("a", REPLY, 60)
        await cache.put("b", REPLY, 60)
    store.release.set()
    await cache.settled()
    assert await cache.get("a") == REPLY and await cache.get("b") is None
    assert any("dropped" in log.get("error", "") for log in logs)


async def test_close_gives_pending_puts_the_drain_timeout_then_cancels_them() -> None:
    store = HeldStore()  # never released
    cache = ResponseCache(store, 1000, drain_timeout=0.2)
    await cache.put("k", REPLY, 60)
    started = time.monotonic()
    await cache.close()
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2.0
