"""A loopback TCP server whose handler writes exact bytes: the upstream side of the client tests."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


class RawServer:
    """`async with RawServer(handler) as server`: counts connections accepted and closed."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self.connections = 0
        self.closed = 0
        self._changed = asyncio.Condition()
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def wait_closed_connections(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.closed >= count), 5.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            await self._handler(reader, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            async with self._changed:
                self.closed += 1
                self._changed.notify_all()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head + Content-Length body) as sent; b"" when the client closed instead."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def replying(data: bytes) -> Handler:
    """A handler that reads one request and writes `data` back, as it is."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)

    return handle


def response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Until `condition()` holds, checked once per event-loop turn: for client states that no event
    announces (a protocol's connection_lost, a task parked on a future). Not a delay."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - no event announces these states
            await asyncio.sleep(0)
