"""The bounded, expiring LRU map both memory stores are: bounds by count and by size, least recently
used out first, expiry when read, an oversized value kept out without changing anything."""

from __future__ import annotations

from gateway.expiring_lru import ExpiringLru


def test_bounds_evict_the_least_recently_used_and_entries_expire_when_read() -> None:
    now = [0.0]
    lru: ExpiringLru[bytes] = ExpiringLru(2, 10, len, lambda: now[0])
    assert lru.put("a", b"1234", 60) and lru.put("b", b"1234", 60)
    assert lru.get("a") == b"1234"  # now "b" is the least recently used
    assert lru.put("c", b"1234", 60)
    assert (lru.get("b"), len(lru), lru.bytes) == (None, 2, 8)
    assert not lru.put("d", b"x" * 11, 60) and len(lru) == 2  # alone over max_bytes: nothing changed
    now[0] = 60.0
    assert lru.get("a") is None and (len(lru), lru.bytes) == (1, 4)
    assert lru.pop("c") == b"1234" and lru.pop("c") is None and lru.bytes == 0
