"""Sending a body upstream and reading what comes back, over HTTP (or the built-in mock).

Transport never looks at bodies: auth headers were fixed when the registry was built, rules run
elsewhere. Upstream failures become `UpstreamFailure` (502 unreachable/broken, 504 timed out; 502
`upstream_headers_too_large` / `upstream_response_too_large` past the `upstream:` caps).

When a request is sent again (Go's net/http rule, `shouldRetryRequest`): a failed exchange is
repeated here, once, on a new connection, only when its connection was a pooled one (a connection's
first request is never sent again) and either
- nothing of the request was written: the connection was found closed as we were about to write
  (`RequestNotSent`: closed already, or idle a while and its socket polls readable: the upstream's
  FIN not processed yet), whatever the request; or
- the request carries an `Idempotency-Key` or `X-Idempotency-Key` header and the connection was
  closed or reset before any byte of the answer (an idle close that crossed our request: the
  upstream may or may not have read it; the key lets it drop a duplicate).
Otherwise (the request was written and may have been read) the failure goes to the route's retry
policy as it is, a `broken` attempt: an LLM call sent twice may be billed twice, so trying it again
is the configured policy's choice, not the connection's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from gateway.config.model import Timeouts, UpstreamSettings
from gateway.engine.registry import Target
from gateway.routing.retry import Failure
from gateway.upstream.aws_credentials import CredentialsUnavailable
from gateway.upstream.dialer import ProxyError
from gateway.upstream.egress import Egress
from gateway.upstream.http1 import Http1Connection
from gateway.upstream.http1_errors import RequestNotSent, ResponseTooLarge, UpstreamProtocolError
from gateway.upstream.pool import ConnectError, ConnectionPool, PoolSaturated, RequestTarget

_UPSTREAM_ERRORS = (TimeoutError, OSError, UpstreamProtocolError)


class UpstreamFailure(Exception):
    """The upstream could not be reached (`connect`), broke off (`broken`), or timed out (`timeout`)."""

    def __init__(self, status: int, message: str, code: str, kind: Failure) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind: Failure = kind


def _failure(provider: str, exc: BaseException) -> UpstreamFailure:
    if isinstance(exc, TimeoutError):
        return UpstreamFailure(
            504, f"upstream provider {provider!r} timed out", "upstream_timeout", "timeout"
        )
    if isinstance(exc, PoolSaturated):  # the gateway is busy, not the upstream: 503, no cooldown
        return UpstreamFailure(
            503,
            f"upstream provider {provider!r}: the gateway has no free connection to {exc.origin} "
            f"({exc.reason}); try again shortly",
            "upstream_saturated",
            "saturated",
        )
    if isinstance(exc, ProxyError):  # named by host:port, never with its credentials
        return UpstreamFailure(
            502,
            f"upstream provider {provider!r} is unreachable: proxy {exc.proxy} {exc.reason}",
            "upstream_unreachable",
            "connect",
        )
    if isinstance(exc, ConnectError):
        return UpstreamFailure(
            502, f"upstream provider {provider!r} is unreachable", "upstream_unreachable", "connect"
        )
    what = (
        "sent a reply that is not valid HTTP"
        if isinstance(exc, UpstreamProtocolError)
        else "closed the connection"
    )
    return UpstreamFailure(
        502, f"upstream provider {provider!r} {what}", "upstream_connection_error", "broken"
    )


def _too_large(provider: str, exc: ResponseTooLarge) -> UpstreamFailure:
    """A reply past an `upstream:` cap (its connection is closed already)."""
    return UpstreamFailure(
        502, f"upstream provider {provider!r} sent {exc}", f"upstream_{exc.part}_too_large", "broken"
    )


_IDEMPOTENCY_KEYS = (b"\r\nidempotency-key:", b"\r\nx-idempotency-key:")


def _has_idempotency_key(head: bytes) -> bool:
    lowered = head.lower()
    return any(name in lowered for name in _IDEMPOTENCY_KEYS)


class UpstreamReply(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def abort(self) -> None:
        """Close the upstream connection now (the reply was not read to the end)."""


class Transport(Protocol):
    def open(
        self, target: Target, url: str, body: bytes, extra_headers: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[UpstreamReply]: ...


class HttpReply:
    __slots__ = ("_conn", "_provider", "headers", "status")

    def __init__(self, provider: str, conn: Http1Connection) -> None:
        self._provider = provider
        self._conn = conn
        self.status = conn.status
        headers = conn.headers
        assert headers is not None
        self.headers: Mapping[str, str] = headers

    async def read(self) -> bytes:
        """The whole body, within the caps: an error reply's (status >= 300) is cut at
        max_error_body_bytes, any other's past max_body_bytes is a 502."""
        try:
            return await self._conn.read_all()
        except ResponseTooLarge as exc:
            raise _too_large(self._provider, exc) from exc
        except _UPSTREAM_ERRORS as exc:
            raise _failure(self._provider, exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while chunk := await conn.read_some():
                yield chunk
        except ResponseTooLarge as exc:
            raise _too_large(self._provider, exc) from exc
        except _UPSTREAM_ERRORS as exc:
            raise _failure(self._provider, exc) from exc

    def abort(self) -> None:
        self._conn.close()


class HttpTransport:
    """HTTP/1.1 to upstreams over one keep-alive `ConnectionPool` shared by every provider."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._header_blocks: dict[Any, tuple[Mapping[str, str], bytes]] = {}

    def open(
        self, target: Target, url: str, body: bytes, extra_headers: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[UpstreamReply]:
        """Send; the context yields once the response headers are in. Connect, first-byte, idle
        (between reads) and total timeouts come from the target. `extra_headers`: the client's own,
        relayed to an upstream that speaks its protocol (the provider's auth and headers win)."""
        return _Exchange(self, target, url, body, extra_headers)

    def head(
        self,
        url: str,
        egress: Egress,
        headers: Mapping[str, str],
        body: bytes,
        cache: bool,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[RequestTarget, bytes]:
        """The request's target and its encoded request line and headers (`extra`: the client's
        relayed headers, under the provider's; blocks for the same values are encoded once too)."""
        where = self._pool.target(url, egress)
        block = None
        key: Any = id(headers) if not extra else (id(headers), *extra.items())
        if cache:
            entry = self._header_blocks.get(key)
            if entry is not None and entry[0] is headers:
                block = entry[1]
        if block is None:
            block = encode_headers({**extra, **headers} if extra else headers)
            if cache:
                if len(self._header_blocks) > 1024:
                    self._header_blocks.clear()
                self._header_blocks[key] = (headers, block)
        line = f"POST {where.path} HTTP/1.1\r\nHost: {where.host_header}\r\nContent-Length: {len(body)}\r\n"
        if where.proxy_header:  # a plain-HTTP request through a proxy carries its credentials
            return where, line.encode("latin-1") + where.proxy_header + block
        return where, line.encode("latin-1") + block


_HOP_BY_HOP = frozenset(
    ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade")
)


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """`Name: value` lines and the blank line that ends them; CR/LF in a name or value is refused
    (it would let a value inject headers). Host and framing headers are ours to set."""
    lines = []
    for name, value in headers.items():
        if name.lower() in _HOP_BY_HOP:
            continue
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid upstream header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class _Exchange:
    """`HttpTransport.open`: acquire a connection, send, wait for the headers; on exit return the
    connection to the pool when the reply was read to its end, close it otherwise."""

    __slots__ = ("_body", "_conn", "_extra", "_target", "_transport", "_url")

    def __init__(
        self,
        transport: HttpTransport,
        target: Target,
        url: str,
        body: bytes,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._transport = transport
        self._extra = extra_headers
        self._target = target
        self._url = url
        self._body = body
        self._conn: Http1Connection | None = None

    async def __aenter__(self) -> UpstreamReply:
        target = self._target
        provider = target.provider
        limits = target.timeouts
        body = self._body
        egress = provider.egress
        try:
            if provider.signer is not None:
                signed = {**self._extra, **provider.headers} if self._extra else provider.headers
                headers = await provider.signer.sign(self._url, signed, body)
                where, head = self._transport.head(self._url, egress, headers, body, cache=False)
            else:
                extra = self._extra  # a traced attempt's own traceparent: a block not worth keeping
                cache = not extra or "traceparent" not in extra
                where, head = self._transport.head(
                    self._url, egress, provider.headers, body, cache=cache, extra=extra
                )
        except ValueError as exc:
            raise UpstreamFailure(
                502, f"upstream provider {provider.name!r}: {exc}", "upstream_request_invalid", "broken"
            ) from exc
        except CredentialsUnavailable as exc:
            raise UpstreamFailure(
                502,
                f"upstream provider {provider.name!r}: {exc}",
                "upstream_credentials_unavailable",
                "connect",
            ) from exc
        pool = self._transport._pool
        try:
            conn = await self._send(pool, where, head, body, limits, provider.upstream)
        except ResponseTooLarge as exc:
            raise _too_large(provider.name, exc) from exc
        except _UPSTREAM_ERRORS as exc:
            raise _failure(provider.name, exc) from exc
        return HttpReply(provider.name, conn)

    async def _send(
        self,
        pool: ConnectionPool,
        where: RequestTarget,
        head: bytes,
        body: bytes,
        limits: Timeouts,
        caps: UpstreamSettings,
    ) -> Http1Connection:
        """The connection whose response headers are in. A pooled connection's failure is tried again
        on a new connection, once, when the module's rule allows it (nothing written, or an
        idempotency key and no byte of an answer)."""
        for fresh in (False, True):
            conn = await pool.acquire(where, limits.connect, fresh=fresh)
            self._conn = conn
            try:
                conn.send(head, body, limits.first_byte, limits.idle, limits.total, caps)
                await conn.response_started()
                return conn
            except BaseException as exc:
                self._conn = None
                resend = not fresh and (
                    isinstance(exc, RequestNotSent)
                    or (
                        conn.closed_while_idle
                        and isinstance(exc, ConnectionError)
                        and _has_idempotency_key(head)
                    )
                )
                pool.release(conn, False)
                if not resend:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            reusable = conn.finish() and exc_type is None  # cancelled, client gone, failed: never reuse
            self._transport._pool.release(conn, reusable)
