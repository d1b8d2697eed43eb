"""Opening one connection to an upstream: resolve the name (cached), connect with happy eyeballs,
tunnel through an HTTP proxy when the provider has one, and TLS.

- Resolution goes through `Resolver` (a short TTL cache; concurrent lookups of a name share one).
- `aiohappyeyeballs.start_connection` (RFC 8305, what aiohttp uses): IPv6 and IPv4 addresses
  interleaved, the next one tried 250 ms after the last if it has not connected yet, the first to
  connect wins. A host whose IPv6 route is broken costs 250 ms, not a connect timeout. A name with
  one address (and an IP address) is connected to by the loop itself: the cheapest, native on uvloop.
- Through a proxy, an https upstream is reached with `CONNECT host:port` (and `Proxy-Authorization:
  Basic` from the proxy URL's userinfo), a 2xx reply, then TLS to the upstream inside the tunnel
  (`loop.start_tls`, SNI and the certificate checked against the upstream's name). An http upstream
  gets the request itself, in absolute form (the pool's `RequestTarget` carries it). An `https://`
  proxy is itself reached over TLS, checked with the provider's TLS context.
- Every failure is a `ConnectError`; a failure of the proxy (unreachable, 407, a refused CONNECT) is a
  `ProxyError` naming the proxy by host:port, never by its credentials. The caller bounds the whole
  (resolve, connect, CONNECT, TLS) with the connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar, cast

import aiohappyeyeballs

from gateway.upstream.egress import Egress, ProxyEndpoint
from gateway.upstream.resolver import Resolver
from gateway.upstream.tls import default_ssl_context

HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried alongside (RFC 8305 suggests 250 ms)
MAX_PROXY_REPLY_BYTES = 16 * 1024  # a CONNECT reply's status line and headers

P = TypeVar("P", bound=asyncio.BaseProtocol)


class ConnectError(ConnectionError):
    """No connection could be opened to the upstream (DNS, refused, unreachable, TLS handshake).
    `detail`: the underlying error's own words."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class ProxyError(ConnectError):
    """The proxy could not be reached or would not carry the connection."""

    def __init__(self, proxy: ProxyEndpoint, reason: str) -> None:
        super().__init__(f"proxy {proxy.label}: {reason}")
        self.proxy = proxy.label
        self.reason = reason


class Dialer:
    """Opens connections for a pool. `ssl_context` is the default for https upstreams whose egress
    has none of its own."""

    def __init__(self, resolver: Resolver | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.resolver = resolver or Resolver()
        self._ssl_context = ssl_context

    def default_ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    async def open(self, scheme: str, host: str, port: int, egress: Egress, factory: Callable[[], P]) -> P:
        """A connected protocol from `factory` (TLS done for https)."""
        loop = asyncio.get_running_loop()
        tls = None
        if scheme == "https":
            tls = egress.ssl_context or self.default_ssl_context()
        proxy = egress.proxy
        if proxy is None:
            return await self._connect(loop, factory, host, port, tls, f"{host}:{port}")
        proxy_tls = None
        if proxy.scheme == "https":
            proxy_tls = egress.ssl_context or self.default_ssl_context()
        where = f"proxy {proxy.label}"
        try:
            if tls is None:  # plain HTTP: the request itself goes to the proxy, in absolute form
                return await self._connect(loop, factory, proxy.host, proxy.port, proxy_tls, where)
            handshake = await self._connect(
                loop, lambda: _TunnelReply(loop), proxy.host, proxy.port, proxy_tls, where
            )
        except ConnectError as exc:
            raise ProxyError(proxy, f"cannot be reached ({exc.detail})") from None
        return await _tunnel(loop, handshake, proxy, host, port, tls, factory)

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        factory: Callable[[], P],
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        peer: str,
    ) -> P:
        """A connection to `host:port` (TLS to `host` when `tls`). One address: the loop connects to
        it (natively on uvloop, the cheapest); several: happy eyeballs picks."""
        try:
            infos = await self.resolver.resolve(host, port)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {host}: {exc}", str(exc)) from None
        server_hostname = host if tls is not None else None
        sock: socket.socket | None = None
        try:
            if len(infos) == 1:
                family, _, _, _, address = infos[0]
                _, protocol = await loop.create_connection(
                    factory, address[0], address[1], family=family, ssl=tls, server_hostname=server_hostname
                )
                return protocol
            sock = await aiohappyeyeballs.start_connection(
                infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
            )
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _, protocol = await loop.create_connection(
                factory, sock=sock, ssl=tls, server_hostname=server_hostname
            )
            sock = None  # the loop's now
            return protocol
        except (OSError, RuntimeError, ssl.CertificateError) as exc:  # uvloop may raise RuntimeError
            what = (
                "TLS handshake with"
                if isinstance(exc, ssl.SSLError | ssl.CertificateError)
                else "connection to"
            )
            raise ConnectError(f"{what} {peer} failed: {exc}", str(exc)) from None
        finally:
            if sock is not None:  # failed before the loop took it (see uvloop issue 653)
                sock.close()


class _TunnelReply(asyncio.Protocol):
    """Reads the proxy's reply to CONNECT: its head, up to the blank line."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[bytes] = loop.create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.head.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_PROXY_REPLY_BYTES:
            self.head.set_exception(
                ValueError(f"sent a CONNECT reply longer than {MAX_PROXY_REPLY_BYTES} bytes")
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ValueError("closed the connection before answering CONNECT"))


async def _tunnel(
    loop: asyncio.AbstractEventLoop,
    handshake: _TunnelReply,
    proxy: ProxyEndpoint,
    host: str,
    port: int,
    tls: ssl.SSLContext,
    factory: Callable[[], P],
) -> P:
    """CONNECT through the proxy, then TLS to the upstream inside the tunnel."""
    transport = handshake.transport
    assert transport is not None
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    try:
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            head = await handshake.head
        except ValueError as exc:
            raise ProxyError(proxy, str(exc)) from None
        status = _status(head)
        if status is None:
            raise ProxyError(proxy, "answered CONNECT with something that is not HTTP")
        if status == 407:
            refused = "refused the credentials in its URL" if proxy.authorization else "wants credentials"
            raise ProxyError(proxy, f"{refused} (407 Proxy Authentication Required)")
        if not 200 <= status < 300:
            raise ProxyError(proxy, f"refused the tunnel to {authority} (status {status})")
        protocol = factory()
        try:
            tls_transport = await loop.start_tls(transport, protocol, tls, server_hostname=host)
        except (OSError, ssl.CertificateError) as exc:
            raise ConnectError(
                f"TLS handshake with {authority} through proxy {proxy.label} failed: {exc}"
            ) from None
        if tls_transport is None:  # pragma: no cover - only when the transport closed under us
            raise ConnectError(f"the tunnel to {authority} through proxy {proxy.label} closed")
        protocol.connection_made(tls_transport)
        return protocol
    except BaseException:
        transport.close()
        raise


def _status(head: bytes) -> int | None:
    """The status code of `HTTP/1.x NNN reason`, or None."""
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    return int(parts[1])
