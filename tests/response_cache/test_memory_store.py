"""The memory store: least recently used first out, bounded by entries and by bytes, each entry gone
at its TTL (an injected clock: no waiting)."""

from __future__ import annotations

from gateway.response_cache.entry import CachedReply
from gateway.response_cache.memory_store import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reply(size: int = 10, marker: bytes = b"x") -> CachedReply:
    return CachedReply(False, marker * size)


async def test_an_entry_is_served_until_its_ttl() -> None:
    clock = Clock()
    store = MemoryStore(10, 1000, clock)
    await store.put("k", reply(), ttl=60)
    clock.now = 1059.9
    assert await store.get("k") == reply()
    clock.now = 1060.0
    assert await store.get("k") is None
    assert len(store) == 0 and store.bytes == 0


async def test_the_least_recently_used_goes_first_when_entries_are_full() -> None:
    store = MemoryStore(2, 1000, Clock())
    await store.put("a", reply(marker=b"a"), 60)
    await store.put("b", reply(marker=b"b"), 60)
    assert await store.get("a") is not None  # a is now the most recently used
    await store.put("c", reply(marker=b"c"), 60)
    assert await store.get("b") is None
    assert await store.get("a") is not None and await store.get("c") is not None
    assert len(store) == 2


async def test_bytes_are_bounded_too() -> None:
    store = MemoryStore(100, 25, Clock())
    for name in ("a", "b", "c"):
        await store.put(name, reply(10), 60)
    assert [await store.get(name) is not None for name in ("a", "b", "c")] == [False, True, True]
    assert store.bytes == 20


async def test_an_entry_larger_than_the_store_is_not_kept() -> None:
    store = MemoryStore(100, 25, Clock())
    await store.put("a", reply(10), 60)
    await store.put("big", reply(26), 60)
    assert await store.get("big") is None
    assert await store.get("a") is not None  # nothing was pushed out for it


async def test_a_new_answer_replaces_the_old_one() -> None:
    clock = Clock()
    store = MemoryStore(100, 1000, clock)
    await store.put("a", reply(10), 10)
    await store.put("a", reply(20, b"y"), 60)
    assert store.bytes == 20 and len(store) == 1
    clock.now += 30
    assert await store.get("a") == reply(20, b"y")


async def test_close_empties_it() -> None:
    store = MemoryStore(100, 1000, Clock())
    await store.put("a", reply(), 60)
    await store.close()
    assert len(store) == 0 and store.bytes == 0
