"""Keep-alive connections to upstreams, shared by every provider of one app.

Connections are kept per origin (scheme, host, port) and reused most-recently-used first; one idle
longer than `keepalive` seconds, or closed by the upstream meanwhile, is never handed out. At most
`limit` connections are open at once: past that, an idle connection of another origin is closed to
make room, or the request waits for a slot (within its connect timeout). TLS uses the system's
trust store (`ssl.create_default_context()`), with SNI and hostname checking.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from gateway.upstream.http1 import Http1Connection

_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_CACHE_SIZE = 4096
# characters left as they are in a request target: RFC 3986 reserved + unreserved, and '%' (already
# encoded sequences pass through byte for byte: a signed path must not change)
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%?#[]"


class ConnectError(ConnectionError):
    """No connection could be opened to the upstream (DNS, refused, unreachable, TLS handshake)."""


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """Where a URL's request goes: the pool key, the Host header and the request-target."""

    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # path + query, percent-encoded


def parse_url(url: str) -> RequestTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return RequestTarget(scheme, host, port, host_header, path)


class ConnectionPool:
    def __init__(
        self, limit: int = 512, keepalive: float = 60.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[Http1Connection]] = {}
        self._open: set[Http1Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._targets: dict[str, RequestTarget] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def target(self, url: str) -> RequestTarget:
        """`url` parsed, from a cache (a config has few distinct upstream URLs)."""
        found = self._targets.get(url)
        if found is None:
            if len(self._targets) >= _URL_CACHE_SIZE:
                self._targets.clear()
            found = self._targets[url] = parse_url(url)
        return found

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def acquire(
        self, target: RequestTarget, connect_timeout: float | None, fresh: bool = False
    ) -> Http1Connection:
        """A connection to `target`'s origin: an idle one (unless `fresh`), or a new one (within
        `connect_timeout`, waiting for a free slot included)."""
        key = (target.scheme, target.host, target.port)
        if not fresh:
            conn = self._take_idle(key)
            if conn is not None:
                return conn
        if self._closed:
            raise ConnectError("the connection pool is closed")
        if connect_timeout:
            async with asyncio.timeout(connect_timeout):
                return await self._new_connection(key, target, fresh)
        return await self._new_connection(key, target, fresh)

    def release(self, conn: Http1Connection, reusable: bool) -> None:
        """An exchange on `conn` is over; keep it for the next request if it can carry one."""
        if not reusable or self._closed:
            conn.close()
            self._forget(conn)
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        key = conn.key
        assert isinstance(key, tuple)
        self._idle.setdefault(key, []).append(conn)
        if self._waiters:
            self._wake_waiter()
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._keepalive, self._sweep)

    async def close(self) -> None:
        """Close every connection, idle or in use (at shutdown)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        await asyncio.sleep(0)  # let the transports run their connection_lost

    # -- internals -------------------------------------------------------------------------------

    def _take_idle(self, key: tuple[str, str, int]) -> Http1Connection | None:
        """The most recently used idle connection to `key` that is still good."""
        idle = self._idle.get(key)
        if not idle:
            return None
        expired_before = asyncio.get_running_loop().time() - self._keepalive
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since > expired_before:
                return conn
            conn.close()
            self._open.discard(conn)
        return None

    async def _new_connection(
        self, key: tuple[str, str, int], target: RequestTarget, fresh: bool
    ) -> Http1Connection:
        """A new connection once there is room (an idle one to `key` freed meanwhile is taken
        instead, unless `fresh`)."""
        while len(self._open) + self._connecting >= self._limit:
            if self._close_one_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._closed:
                raise ConnectError("the connection pool is closed")
            conn = None if fresh else self._take_idle(key)
            if conn is not None:
                return conn
        loop = asyncio.get_running_loop()
        self._connecting += 1
        try:
            use_tls = target.scheme == "https"
            if use_tls and self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            _, conn = await loop.create_connection(
                lambda: Http1Connection(loop, self._forget),
                target.host,
                target.port,
                ssl=self._ssl_context if use_tls else None,
                server_hostname=target.host if use_tls else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        finally:
            self._connecting -= 1
        sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.key = key
        if self._closed:
            conn.close()
            raise ConnectError("the connection pool is closed")
        self._open.add(conn)
        return conn

    def _forget(self, conn: Http1Connection) -> None:
        """`conn` is closed (by us or by the upstream): it no longer counts, idle or open."""
        if conn in self._open:
            self._open.discard(conn)
            idle = self._idle.get(conn.key) if isinstance(conn.key, tuple) else None
            if idle and conn in idle:
                idle.remove(conn)
            if self._waiters:
                self._wake_waiter()

    def _wake_waiter(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_one_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                conn = idle.pop(0)  # the least recently used of that origin
                conn.close()
                self._open.discard(conn)
                return True
        return False

    def _sweep(self) -> None:
        """Close connections idle past the keep-alive time; re-arm while any stay idle."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        expired_before = loop.time() - self._keepalive
        remaining = False
        for idle in self._idle.values():
            fresh = [conn for conn in idle if not conn.closed and conn.idle_since > expired_before]
            for conn in idle:
                if conn not in fresh:
                    conn.close()
                    self._open.discard(conn)
            idle[:] = fresh
            remaining = remaining or bool(fresh)
        if remaining and not self._closed:
            self._sweeper = loop.call_later(self._keepalive / 2, self._sweep)
