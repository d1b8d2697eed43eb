"""What every shared store the gateway writes to in the background needs (rate limits and spend,
stored responses, cached answers): its failures logged without flooding the log, and its writes
bounded and drained at shutdown.

`FailureLog` writes a store's error event at most once per LOG_INTERVAL_S, saying how many failures
were not logged since (a metric counts each one). `BackgroundWrites` runs at most `limit` writes at
once (a caller finds it full and drops the write, reporting it) and gives those still running
`drain_timeout` seconds at shutdown before cancelling them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from structlog.typing import FilteringBoundLogger

LOG_INTERVAL_S = 10.0  # at most one error line per store per interval
RECHECK_S = 1.0  # after a failed read, a store is left alone this long before it is asked again
DRAIN_TIMEOUT_S = 5.0


class FailureLog:
    __slots__ = ("_clock", "_event", "_log", "_log_after", "_not_logged", "_redact")

    def __init__(
        self,
        log: FilteringBoundLogger,
        event: str,
        clock: Callable[[], float],
        redact: Callable[[str], str] = str,
    ) -> None:
        self._log = log
        self._event = event
        self._clock = clock
        self._redact = redact  # an error's text may carry the store's URL
        self._log_after = float("-inf")
        self._not_logged = 0

    def __call__(self, operation: str, exc: BaseException, **fields: Any) -> None:
        now = self._clock()
        if now < self._log_after:
            self._not_logged += 1
            return
        self._log.error(
            self._event,
            operation=operation,
            error=self._redact(repr(exc)),
            **fields,
            not_logged=self._not_logged,  # failures since the previous line
        )
        self._not_logged = 0
        self._log_after = now + LOG_INTERVAL_S


class BackgroundWrites:
    __slots__ = ("_drain_timeout", "_limit", "_running")

    def __init__(self, limit: int, drain_timeout: float = DRAIN_TIMEOUT_S) -> None:
        self._limit = limit
        self._drain_timeout = drain_timeout
        self._running: dict[Hashable, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._running)

    @property
    def limit(self) -> int:
        return self._limit

    def full(self) -> bool:
        return len(self._running) >= self._limit

    def start(self, write: Coroutine[Any, Any, None], key: Hashable | None = None) -> None:
        """Run `write` in the background (the caller checked `full()`); `key` finds it again (`of`)."""
        task = asyncio.get_running_loop().create_task(write)
        name: Hashable = task if key is None else key
        self._running[name] = task
        task.add_done_callback(lambda _: self._running.pop(name, None))

    def of(self, key: Hashable) -> asyncio.Task[None] | None:
        return self._running.get(key)

    async def settled(self) -> None:
        """Return once every write running now has finished (or failed)."""
        if self._running:
            await asyncio.wait(set(self._running.values()))

    async def drain(self) -> int:
        """Give the running writes `drain_timeout` seconds, cancel the rest; how many were cancelled."""
        running = set(self._running.values())
        if not running:
            return 0
        _, late = await asyncio.wait(running, timeout=self._drain_timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        return len(late)
