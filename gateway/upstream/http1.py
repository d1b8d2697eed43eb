"""One HTTP/1.1 client connection to an upstream: send a request, read its response, keep alive.

Why not aiohttp's client: it costs ~130 us of CPU per request on this project's benchmark machine
(request object, cookie jar, tracing, multidict juggling); this connection costs ~25 us for the same
exchange. Parsing is httptools (llhttp, the parser Node.js uses): status line, headers,
Content-Length, chunked and read-until-close bodies, 1xx responses skipped.

One response at a time per connection (no pipelining). Timeouts are enforced by one timer per
exchange that re-arms itself only when it fires early: first byte (request sent -> response
headers), idle (the longest gap between body reads while we are waiting for data) and total.
A response body is buffered for a reader; in streaming mode reading is paused when the reader falls
behind (`STREAM_HIGH_WATER`), so a slow client applies backpressure all the way upstream.

Failures are raised as `TimeoutError` (a timeout), `UpstreamProtocolError` (a reply that is not
valid HTTP, an unsupported content coding) or `ConnectionError` (the peer closed or reset).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

STREAM_HIGH_WATER = 256 * 1024  # bytes buffered for a streaming reader before reading pauses


class UpstreamProtocolError(Exception):
    """The upstream's reply is not HTTP we can read."""


class _Decoder:
    """gzip / deflate content decoding (we never ask for it, an upstream may send it anyway)."""

    __slots__ = ("_z",)

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=47)  # 32 + 15: zlib or gzip header, detected

    def decode(self, data: bytes) -> bytes:
        try:
            return self._z.decompress(data)
        except zlib.error as exc:
            raise UpstreamProtocolError(f"undecodable compressed body: {exc}") from None

    def flush(self) -> bytes:
        return self._z.flush()


class Http1Connection(asyncio.Protocol):
    """The protocol object of one upstream socket. The pool owns it; `HttpExchange` drives it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Http1Connection], None]) -> None:
        self._loop = loop
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.key: object = None  # the pool's key for this connection's origin
        self.exchanges = 0  # requests sent on this connection
        self._parser: httptools.HttpResponseParser | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self._header_list: list[tuple[str, str]] = []
        self.headers: CIMultiDictProxy[str] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._high_water = STREAM_HIGH_WATER
        self._paused = False
        self._decoder: _Decoder | None = None
        self._until_close = False
        self._skip_message = False
        self.complete = False
        self.keep_alive = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._total_deadline = 0.0
        self._first_byte = 0.0
        self._idle = 0.0
        self._sent_at = 0.0
        self._last_data = 0.0
        self.received = False  # any byte of the response
        self.active = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:  # bytes while idle or after the response: not HTTP/1.1
            self.close()  # as we speak it; the connection cannot carry another request
            return
        self._last_data = self._loop.time()
        self.received = True
        try:
            assert self._parser is not None
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except UpstreamProtocolError as exc:  # raised in a callback, passed through as it is
            self._fail(exc)
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # raised in a callback, wrapped by httptools
            self._fail(cause if isinstance(cause, UpstreamProtocolError) else UpstreamProtocolError(str(exc)))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete:
            if self._until_close and self.headers is not None and self._error is None:
                self._finish_body()  # a body delimited by the end of the connection
            else:
                reason = f": {exc}" if exc else ""
                self._fail(ConnectionError(f"the upstream closed the connection{reason}"))
        self._on_lost(self)

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second response to one request (in the same read as the first)
            raise UpstreamProtocolError("the upstream sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_list.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: not the response
            self._skip_message = True
            self._header_list = []
            return
        headers = CIMultiDictProxy(CIMultiDict(self._header_list))
        coding = headers.get("Content-Encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder()
        elif coding not in ("identity", ""):
            raise UpstreamProtocolError(f"unsupported Content-Encoding {coding!r}")
        self.status = status
        self.headers = headers
        self._until_close = (
            "Content-Length" not in headers and "chunked" not in headers.get("Transfer-Encoding", "").lower()
        )
        self._wake()

    def on_body(self, data: bytes) -> None:
        if self._skip_message:
            return
        if self._decoder is not None:
            data = self._decoder.decode(data)
            if not data:
                return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > self._high_water and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._skip_message:
            self._skip_message = False
            return
        assert self._parser is not None
        self.keep_alive = bool(self._parser.should_keep_alive())
        self._finish_body()

    # -- the exchange ----------------------------------------------------------------------------

    def send(
        self, head: bytes, body: bytes, first_byte: float | None, idle: float | None, total: float | None
    ) -> None:
        """Write one request and start its timers (None: no limit)."""
        assert self.transport is not None
        self._reset()
        self.active = True
        self.exchanges += 1
        self._parser = httptools.HttpResponseParser(self)
        now = self._loop.time()
        self._sent_at = self._last_data = now
        self._first_byte = first_byte or 0.0
        self._idle = idle or 0.0
        self._total_deadline = now + total if total else 0.0
        self._arm(now)
        if len(body) <= 65536:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))

    async def response_started(self) -> None:
        """Wait for the status line and headers."""
        while self.headers is None:
            await self._wait()

    async def read_all(self) -> bytes:
        """The whole body (reading is not paused: the caller wants it all)."""
        self._high_water = 1 << 62
        if self._paused:
            self._resume()
        while not self.complete:
            await self._wait()
        body = self._body
        self._body = deque()
        self._buffered = 0
        return body[0] if len(body) == 1 else b"".join(body)

    async def read_some(self) -> bytes:
        """What has arrived since the last call (waiting for some); b"" at the end of the body."""
        while not self._body:
            if self.complete:
                return b""
            await self._wait()
        body = self._body
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        if self._paused:
            self._resume()
        return data

    @property
    def closed_while_idle(self) -> bool:
        """The upstream closed this reused connection before answering a byte: it had closed it as idle
        (the close crossed our request). The request was not seen; resending it is safe."""
        return self.exchanges > 1 and not self.received and isinstance(self._error, ConnectionError)

    def finish(self) -> bool:
        """The exchange is over: True when the connection can carry another request."""
        self._cancel_timer()
        self.active = False
        return self.complete and self.keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    # -- internals -------------------------------------------------------------------------------

    def _finish_body(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._body.append(tail)
                self._buffered += len(tail)
        self.complete = True
        self._cancel_timer()
        self._wake()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
        # an error is raised on the next call, if the caller still needs more than what arrived

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.close()
        self._wake()

    def _resume(self) -> None:
        self._paused = False
        self._last_data = self._loop.time()  # the pause was ours: it is not upstream idleness
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _arm(self, now: float) -> None:
        deadline = self._next_deadline(now)
        if deadline:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _next_deadline(self, now: float) -> float:
        deadlines = []
        if self._total_deadline:
            deadlines.append(self._total_deadline)
        if self.headers is None:
            if self._first_byte:
                deadlines.append(self._sent_at + self._first_byte)
        elif self._idle:
            deadlines.append((self._last_data if not self._paused else now) + self._idle)
        return min(deadlines) if deadlines else 0.0

    def _on_timer(self) -> None:
        self._timer = None
        if not self.active or self.complete:
            return
        now = self._loop.time()
        if self._total_deadline and now >= self._total_deadline:
            self._fail(TimeoutError("the upstream did not finish in time"))
        elif self.headers is None and self._first_byte and now >= self._sent_at + self._first_byte:
            self._fail(TimeoutError("the upstream did not answer in time"))
        elif (
            self.headers is not None
            and self._idle
            and not self._paused
            and now >= self._last_data + self._idle
        ):
            self._fail(TimeoutError("the upstream stalled"))
        else:
            self._arm(now)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
