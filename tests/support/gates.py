"""A one-shot flag that can be set from any thread and awaited from any thread or event loop.

Fakes run on a server thread's loop while tests run in the test thread (sync) or in pytest's loop
(async); a Gate lets either side wait for the other without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

DEFAULT_TIMEOUT = 10.0


class Gate:
    __slots__ = ("_flag", "_lock", "_waiters", "name")

    def __init__(self, name: str = "gate") -> None:
        self.name = name
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"Gate({self.name!r}, set={self.is_set()})"

    def is_set(self) -> bool:
        return self._flag.is_set()

    def set(self) -> None:
        with self._lock:
            self._flag.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is already closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future)

    def wait_sync(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Block the calling thread until set; False on timeout."""
        return self._flag.wait(timeout)

    async def wait(self, within: float | None = DEFAULT_TIMEOUT) -> bool:
        """Wait in the running loop until set; False on timeout (None: no timeout)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._flag.is_set():
                return True
            self._waiters.append((loop, future))
        try:
            async with asyncio.timeout(within):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))

    def expect(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """wait_sync, failing the test with the gate's name on timeout."""
        assert self.wait_sync(timeout), f"timed out after {timeout} s waiting for {self.name}"

    async def expect_async(self, within: float = DEFAULT_TIMEOUT) -> None:
        assert await self.wait(within), f"timed out after {within} s waiting for {self.name}"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
