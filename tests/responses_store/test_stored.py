"""The store as requests meet it: owners, failures (a read is a 503, a write is logged and counted, never
raised), background writes that a read of the same id waits for, and the drain at shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from gateway import json_codec
from gateway.errors import GatewayError
from gateway.responses_store.backends import MemoryResponses
from gateway.responses_store.stored import ResponseStore, StoreOperation, entry_bytes
from gateway.store_failures import RECHECK_S

RESPONSE = {"id": "resp_a", "object": "response", "output": []}
ITEMS = [
    {"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
]


def entry(owner: str | None = "team-a") -> bytes:
    return entry_bytes(owner, "gw-model", ITEMS, json_codec.dumps(RESPONSE))


class SlowBackend:
    """A network backend: every put waits for `release`; `fail` makes every call raise."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.closed = False

    async def put(self, response_id: str, data: bytes) -> bool:
        await self.release.wait()
        if self.fail:
            raise self.fail
        self.data[response_id] = data
        return True

    async def get(self, response_id: str) -> bytes | None:
        if self.fail:
            raise self.fail
        return self.data.get(response_id)

    async def delete(self, response_id: str) -> bool:
        if self.fail:
            raise self.fail
        return self.data.pop(response_id, None) is not None

    async def close(self) -> None:
        self.closed = True


def test_an_entry_is_the_response_bytes_with_what_led_to_it() -> None:
    assert json_codec.loads(entry()) == {
        "owner": "team-a",
        "model": "gw-model",
        "input": ITEMS,
        "response": RESPONSE,
    }


async def test_only_its_owner_reads_or_deletes_a_response() -> None:
    store = ResponseStore(MemoryResponses(60, 10, 100_000))
    store.keep("resp_a", entry("team-a"))
    found = await store.get("resp_a", "team-a")
    assert found is not None and found.response == RESPONSE and found.input_items == ITEMS
    assert found.model == "gw-model"
    assert await store.get("resp_a", "team-b") is None
    assert await store.get("resp_a", None) is None  # (the open gateway's are owner None)
    assert await store.delete("resp_a", "team-b") is False
    assert await store.delete("resp_a", "team-a") is True
    assert await store.get("resp_a", "team-a") is None


async def test_a_read_waits_for_a_pending_write_of_the_same_id() -> None:
    backend = SlowBackend()
    store = ResponseStore(backend)
    store.keep("resp_a", entry())
    assert store.pending_writes == 1
    reading = asyncio.ensure_future(store.get("resp_a", "team-a"))
    await asyncio.sleep(0)
    assert not reading.done()  # held by the write
    backend.release.set()
    found = await reading
    assert found is not None and found.response == RESPONSE
    assert store.pending_writes == 0


async def test_a_failing_read_is_a_503_logged_and_counted() -> None:
    backend = SlowBackend()
    backend.fail = ConnectionError("redis://:secret@127.0.0.1:6379 refused")
    errors: list[StoreOperation] = []
    store = ResponseStore(backend, errors.append, redact=lambda text: text.replace("secret", "***"))
    with structlog.testing.capture_logs() as logs, pytest.raises(GatewayError) as caught:
        await store.get("resp_a", None)
    assert (caught.value.status, caught.value.code) == (503, "response_store_unavailable")
    assert caught.value.headers == {"retry-after": "1"}
    assert errors == ["get"]
    [line] = logs
    assert (
        line["event"] == "response_store_error" and "***" in line["error"] and "secret" not in line["error"]
    )
    with pytest.raises(GatewayError):
        await store.delete("resp_a", None)


async def test_a_failing_write_is_logged_and_counted_never_raised() -> None:
    backend = SlowBackend()
    backend.fail = ConnectionError("down")
    backend.release.set()
    errors: list[StoreOperation] = []
    store = ResponseStore(backend, errors.append)
    with structlog.testing.capture_logs() as logs:
        store.keep("resp_a", entry())
        store.keep("resp_b", entry())
        await store.close()
    assert errors == ["put", "put"]
    assert [line["event"] for line in logs] == ["response_store_error"]  # (one line per interval)


async def test_an_entry_over_the_memory_bound_is_counted_as_not_kept() -> None:
    errors: list[StoreOperation] = []
    store = ResponseStore(MemoryResponses(60, 10, 1024), errors.append)
    with structlog.testing.capture_logs():
        store.keep("resp_a", b"x" * 2000)
    assert errors == ["put"] and await store.get("resp_a", None) is None


async def test_too_many_pending_writes_are_dropped() -> None:
    backend = SlowBackend()
    errors: list[StoreOperation] = []
    store = ResponseStore(backend, errors.append, max_pending=1)
    with structlog.testing.capture_logs():
        store.keep("resp_a", entry())
        store.keep("resp_b", entry())
    assert errors == ["put"] and store.pending_writes == 1
    backend.release.set()
    await store.close()
    assert list(backend.data) == ["resp_a"] and backend.closed


async def test_close_gives_pending_writes_the_drain_timeout_then_drops_them() -> None:
    backend = SlowBackend()  # never released
    errors: list[StoreOperation] = []
    store = ResponseStore(backend, errors.append, drain_timeout=0.2)
    store.keep("resp_a", entry())
    started = time.monotonic()
    with structlog.testing.capture_logs():
        await store.close()
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2.0
    assert errors == ["put"] and backend.closed and backend.data == {}


async def test_after_a_failed_read_the_store_is_left_alone_for_a_while() -> None:
    """A store that hangs costs one timeout, not one per request: reads are 503s at once for RECHECK_S."""
    backend = SlowBackend()
    backend.fail = TimeoutError()
    now = [100.0]
    errors: list[StoreOperation] = []
    store = ResponseStore(backend, errors.append, clock=lambda: now[0])
    asked = 0
    real_get = backend.get

    async def counted_get(response_id: str) -> bytes | None:
        nonlocal asked
        asked += 1
        return await real_get(response_id)

    backend.get = counted_get  # type: ignore[method-assign]
    with structlog.testing.capture_logs():
        for _ in range(3):
            with pytest.raises(GatewayError):
                await store.get("resp_a", None)
        assert asked == 1 and errors == ["get", "get", "get"]
        now[0] += RECHECK_S
        backend.fail = None
        assert await store.get("resp_a", None) is None and asked == 2


async def test_a_reply_waits_for_its_write_to_land() -> None:
    """`landed` returns once the write `keep` started is done, so the reply that follows it finds the
    response stored on any replica; with nothing pending (memory) at once."""
    backend = SlowBackend()
    store = ResponseStore(backend)
    store.keep("resp_a", entry())
    landing = asyncio.ensure_future(store.landed("resp_a"))
    await asyncio.sleep(0)
    assert not landing.done()  # held by the write
    backend.release.set()
    await landing
    assert "resp_a" in backend.data
    memory = ResponseStore(MemoryResponses(max_entries=10, max_bytes=1_000_000, ttl=60))
    memory.keep("resp_a", entry())
    await memory.landed("resp_a")  # (stored at once: nothing to wait for)
    assert await memory.get("resp_a", "team-a") is not None


async def test_after_a_failed_write_replies_do_not_wait_for_writes_for_a_while() -> None:
    backend = SlowBackend()
    backend.fail = TimeoutError()
    backend.release.set()
    now = [100.0]
    store = ResponseStore(backend, clock=lambda: now[0])
    with structlog.testing.capture_logs():
        store.keep("resp_a", entry())
        await store.landed("resp_a")  # waited for, and failed
        backend.release.clear()
        store.keep("resp_b", entry())
        await asyncio.wait_for(store.landed("resp_b"), timeout=5)  # not waited for: returns at once
        assert store.pending_writes == 1
        now[0] += RECHECK_S
        landing = asyncio.ensure_future(store.landed("resp_b"))
        await asyncio.sleep(0)
        assert not landing.done()  # waited for again
        backend.release.set()
        await landing
