"""Run aiohttp apps on 127.0.0.1 in a background thread with its own event loop.

The servers live outside the test's event loop, so the synchronous `openai.OpenAI` client works from the
test thread and async tests can use their own loop. Start and stop are deterministic: `start()` returns
once the site is listening (or raises what went wrong), `stop()` returns once the loop is closed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def closed_port() -> int:
    """A local port nothing listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class ServerThread:
    """One aiohttp application served from a daemon thread.

    `app_factory` is called inside the server's loop. `handler_cancellation=True` (as the gateway's own
    `serve()` uses) cancels a handler when its client goes away, which is how fakes notice disconnects.
    `runner` serves the app instead of a plain web.AppRunner: the gateway's tests pass the production
    one (gateway.server.gateway_runner), and get its answers to requests aiohttp cannot parse.
    """

    def __init__(
        self,
        app_factory: Callable[[], web.Application],
        *,
        name: str = "server",
        handler_cancellation: bool = True,
        shutdown_timeout: float = 2.0,
        runner: Callable[[web.Application], web.AppRunner] | None = None,
    ) -> None:
        self._app_factory = app_factory
        self._runner = runner
        self._name = name
        self._handler_cancellation = handler_cancellation
        self._shutdown_timeout = shutdown_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError(f"{self._name} did not start within {START_TIMEOUT} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT)
            raise RuntimeError(f"{self._name} failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT + self._shutdown_timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self._name} did not stop within {STOP_TIMEOUT} s")
        self._thread = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it happened before readiness
            if not self._ready.is_set():
                self._error = exc
            else:
                raise
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = self._app_factory()
        if self._runner is not None:
            runner = self._runner(app)
        else:
            runner = web.AppRunner(
                app,
                handler_cancellation=self._handler_cancellation,
                access_log=None,
                shutdown_timeout=self._shutdown_timeout,
            )
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
