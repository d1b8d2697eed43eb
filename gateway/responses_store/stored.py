"""The response store as a request meets it: entries with their owner, and failures that never fail a
response the client already has.

An entry is one JSON object: the Response as the client got it, the input items that led to it (the
whole conversation before it: a continued response's are its predecessor's input and output, then the
request's own input), the gateway key that made it (`owner`: another key, or the open gateway, does
not see it) and the model alias.

Writes go in the background (`keep`): a failing backend never fails the response it keeps; a failure is
logged (`response_store_error`, at most once per LOG_INTERVAL_S, with how many were not logged since)
and counted. The reply waits for its write (`landed`, bounded by the backend's timeouts) before the
bytes that carry the response go out, so a client that continues it at once finds it on any replica;
a read of an id whose write is still pending in this process waits for it too. At most `max_pending`
writes wait at once (more are dropped, and counted); `close` gives them `drain_timeout` seconds at
shutdown.

Reads that fail (the backend is down, or slower than its timeout) are a 503
`response_store_unavailable`: the response may well exist, and a 404 would tell the client to start
over, where trying again shortly is right. After a failed read the backend is left alone for RECHECK_S
(reads are 503s at once): a store that hangs costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from gateway import json_codec
from gateway.errors import GatewayError
from gateway.responses_store.backends import MemoryResponses, ResponseBackend
from gateway.store_failures import DRAIN_TIMEOUT_S, RECHECK_S, BackgroundWrites, FailureLog

log = structlog.get_logger("gateway.responses")

MAX_PENDING_WRITES = 10_000

StoreOperation = Literal["get", "put", "delete"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    owner: str | None
    model: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    size: int = 0  # bytes, as stored


def entry_bytes(owner: str | None, model: str, items: list[dict[str, Any]], response: bytes) -> bytes:
    """The entry as stored: the Response's own bytes (as the client got them) are not encoded again."""
    head = json_codec.dumps({"owner": owner, "model": model, "input": items})
    return head[:-1] + b',"response":' + response + b"}"


def unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The response store is unavailable, so stored responses cannot be read right now. Try again shortly.",
        code="response_store_unavailable",
        headers={"retry-after": "1"},
    )


class ResponseStore:
    __slots__ = (
        "_backend",
        "_clock",
        "_count_error",
        "_log",
        "_pending",
        "_resting_until",
        "_unwaited_until",
    )

    def __init__(
        self,
        backend: ResponseBackend,
        count_error: Callable[[StoreOperation], None] = lambda _operation: None,
        *,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = MAX_PENDING_WRITES,
        drain_timeout: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self._backend = backend
        self._count_error = count_error
        self._pending = BackgroundWrites(max_pending, drain_timeout)  # by response id
        self._clock = clock
        self._resting_until = float("-inf")
        self._unwaited_until = float("-inf")  # after a failed write replies do not wait for writes
        self._log = FailureLog(log, "response_store_error", clock, redact)

    @property
    def pending_writes(self) -> int:
        return len(self._pending)

    # -- reads (a 503 when the backend fails) ------------------------------------------------------

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        """The entry, when there is one and `owner` made it."""
        pending = self._pending.of(response_id)
        if pending is not None:
            await asyncio.shield(pending)  # (its failure is reported by the write itself)
        if self._clock() < self._resting_until:
            self._report("get", ConnectionError("the store failed moments ago: not asked"))
            raise unavailable()
        try:
            data = await self._backend.get(response_id)
        except Exception as exc:
            self._resting_until = self._clock() + RECHECK_S
            self._report("get", exc)
            raise unavailable() from None
        if data is None:
            return None
        try:
            entry = json_codec.loads(data)
            stored = StoredResponse(
                entry["owner"], entry["model"], entry["response"], entry["input"], len(data)
            )
        except Exception as exc:  # not one of ours (another program's key in a shared Redis?)
            self._report("get", exc)
            return None
        return stored if stored.owner == owner else None

    async def delete(self, response_id: str, owner: str | None) -> bool:
        """Whether `owner` had such a response (now deleted)."""
        if await self.get(response_id, owner) is None:
            return False
        try:
            return await self._backend.delete(response_id)
        except Exception as exc:
            self._report("delete", exc)
            raise unavailable() from None

    # -- writes (never raised: logged and counted) -------------------------------------------------

    def keep(self, response_id: str, data: bytes) -> None:
        """Store an entry (entry_bytes) in the background; this process's memory at once."""
        backend = self._backend
        if isinstance(backend, MemoryResponses):
            if not backend.put_now(response_id, data):
                self._report("put", OverflowError(f"a response of {len(data)} bytes is over max_bytes"))
            return
        if self._pending.full():
            self._report("put", OverflowError(f"{self._pending.limit} writes already pending: one dropped"))
            return
        self._pending.start(self._put(response_id, data), response_id)

    async def landed(self, response_id: str) -> None:
        """Return once the write `keep` started for `response_id` has finished or failed (at once when
        there is none: the memory backend stores at once). A reply waits for it, so that another
        worker or replica finds the response its client already has; the backend's own timeouts
        bound the wait, and the write goes on if the waiter goes away. After a failed write replies
        do not wait for RECHECK_S: a store that is down costs one timeout, not one per reply."""
        pending = self._pending.of(response_id)
        if pending is not None and self._clock() >= self._unwaited_until:
            await asyncio.wait({pending})

    async def _put(self, response_id: str, data: bytes) -> None:
        try:
            await self._backend.put(response_id, data)
        except Exception as exc:
            self._unwaited_until = self._clock() + RECHECK_S
            self._report("put", exc)

    def _report(self, operation: StoreOperation, exc: BaseException, count: int = 1) -> None:
        for _ in range(count):
            self._count_error(operation)
        self._log(operation, exc)

    async def close(self) -> None:
        """Give pending writes `drain_timeout` to finish, cancel the rest, then close the backend."""
        late = await self._pending.drain()
        if late:
            self._report("put", TimeoutError(f"{late} writes pending at shutdown: dropped"), late)
        await self._backend.close()
