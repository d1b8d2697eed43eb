"""The memory backend's bounds (entries, bytes, TTL) with an injected clock, and the Redis backend against
a real redis-server (skipped visibly without one)."""

from __future__ import annotations

from gateway.responses_store.backends import MemoryResponses, RedisResponses

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def memory(
    max_entries: int = 100, max_bytes: int = 10_000, ttl: float = DAY
) -> tuple[MemoryResponses, Clock]:
    clock = Clock()
    return MemoryResponses(ttl, max_entries, max_bytes, clock=clock), clock


async def test_kept_read_and_deleted() -> None:
    store, _ = memory()
    assert await store.put("resp_a", b"A")
    assert await store.get("resp_a") == b"A"
    assert await store.delete("resp_a") is True
    assert await store.get("resp_a") is None
    assert await store.delete("resp_a") is False
    assert store.size == (0, 0)


async def test_the_least_recently_used_goes_first_past_max_entries() -> None:
    store, _ = memory(max_entries=2)
    await store.put("resp_a", b"A")
    await store.put("resp_b", b"B")
    assert await store.get("resp_a") == b"A"  # (now the most recently used)
    await store.put("resp_c", b"C")
    assert await store.get("resp_b") is None
    assert await store.get("resp_a") == b"A" and await store.get("resp_c") == b"C"
    assert store.size == (2, 2)


async def test_entries_go_past_max_bytes_and_one_over_it_is_not_kept() -> None:
    store, _ = memory(max_bytes=1024)
    await store.put("resp_a", b"a" * 400)
    await store.put("resp_b", b"b" * 400)
    await store.put("resp_c", b"c" * 400)  # 1200 bytes: the oldest goes
    assert await store.get("resp_a") is None
    assert store.size == (2, 800)
    assert await store.put("resp_huge", b"x" * 1025) is False
    assert await store.get("resp_huge") is None and store.size == (2, 800)


async def test_a_rewritten_entry_counts_once() -> None:
    store, _ = memory()
    await store.put("resp_a", b"12345")
    await store.put("resp_a", b"123")
    assert store.size == (1, 3)


async def test_an_expired_entry_is_gone() -> None:
    store, clock = memory(ttl=30 * DAY)
    await store.put("resp_a", b"A")
    clock.now += 30 * DAY - 1
    assert await store.get("resp_a") == b"A"
    clock.now += 1
    assert await store.get("resp_a") is None
    assert store.size == (0, 0)
    await store.put("resp_b", b"B")
    clock.now += 30 * DAY
    assert await store.delete("resp_b") is False


async def test_redis_keeps_every_entry_with_the_ttl(redis_url: str) -> None:
    store = RedisResponses(redis_url, ttl=2 * DAY, prefix="test:resp:")
    try:
        assert await store.put("resp_a", b'{"a":1}')
        assert await store.get("resp_a") == b'{"a":1}'
        ttl_ms = await store._redis.pttl("test:resp:resp_a")
        assert 2 * DAY * 1000 - 60_000 < ttl_ms <= 2 * DAY * 1000
        assert await store.delete("resp_a") is True
        assert await store.get("resp_a") is None and await store.delete("resp_a") is False
    finally:
        await store.close()
