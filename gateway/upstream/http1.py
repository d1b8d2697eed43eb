"""One HTTP/1.1 client connection to an upstream: send a request, read its response, keep alive.

Why not aiohttp's client: it costs ~130 us of CPU per request on this project's benchmark machine
(request object, cookie jar, tracing, multidict juggling); this connection costs ~25 us for the same
exchange. Parsing is httptools (llhttp, the parser Node.js uses): status line, headers,
Content-Length, chunked and read-until-close bodies, 1xx responses skipped.

One response at a time per connection (no pipelining). Timeouts (first byte, idle, total) are
kept by one timer per exchange: deadlines.py.

Everything held is bounded by the `upstream:` caps (UpstreamSettings), checked as bytes arrive:
- the status line and header fields (1xx responses included): `max_header_bytes`, `max_headers`,
  checked after each read (at most one socket read past the cap is ever held) and when the headers
  are complete; trailers and chunk framing without body bytes count against `max_header_bytes` too
  and are dropped;
- a body read whole (`read_all`): `max_body_bytes`, decoded size; an error reply's (status >= 300)
  is cut at `max_error_body_bytes` and the rest left unread (the connection is closed instead);
- a streamed body: reading pauses past `STREAM_HIGH_WATER` buffered bytes until the reader catches
  up, so a slow client applies backpressure all the way upstream; one stream event's size is the
  framing decoders' cap (gateway/framing);
- gzip / deflate: decoded by the reader in steps of at most DECODE_STEP bytes (content_coding.py).
Past a cap: `ResponseTooLarge`, and the connection is closed, never reused.

Failures are raised as `TimeoutError` (a timeout), `UpstreamProtocolError` (a reply that is not
valid HTTP, an unsupported or broken content coding, `ResponseTooLarge`) or `ConnectionError` (the
peer closed or reset; `RequestNotSent` when it had closed before anything was written):
http1_errors.py.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.model import UpstreamSettings
from gateway.upstream.content_coding import DECODE_STEP, ContentDecoder
from gateway.upstream.deadlines import ExchangeDeadlines
from gateway.upstream.http1_errors import RequestNotSent, ResponseTooLarge, UpstreamProtocolError

STREAM_HIGH_WATER = 256 * 1024  # bytes buffered for a streaming reader before reading pauses
# A pooled connection idle at least this long (seconds) has its socket polled before a request is
# written on it: an upstream's idle close (FIN) that the event loop has not processed yet is found
# there, and the request goes elsewhere, unwritten. Busy connections (reused within this) skip the
# poll; no upstream closes a connection as idle that soon.
POLL_AFTER_IDLE = 0.1
_DEFAULT_CAPS = UpstreamSettings()


class _Discard:
    """Where trailer fields go once the headers are complete: we have no use for them (their bytes
    are counted against max_header_bytes in data_received)."""

    __slots__ = ()

    def append(self, field: tuple[str, str]) -> None:
        pass


_DISCARD = _Discard()


class Http1Connection(ExchangeDeadlines, asyncio.Protocol):
    """The protocol object of one upstream socket. The pool owns it; `HttpExchange` drives it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Http1Connection], None]) -> None:
        self._loop = loop
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.key: object = None  # the pool's key for this connection's origin
        self.exchanges = 0  # requests sent on this connection
        self._fd = -1
        self._parser: httptools.HttpResponseParser | None = None
        self._caps = _DEFAULT_CAPS
        self._reset()
        self._start_deadlines(0.0, None, None, None)

    def _reset(self) -> None:
        self.status = 0
        self._header_list: list[tuple[str, str]] | _Discard = []
        self.headers: CIMultiDictProxy[str] | None = None
        self._head_bytes = 0  # received before the final response's headers were complete
        self._framing_bytes = 0  # received since the last body byte (chunk framing, trailers)
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._high_water = STREAM_HIGH_WATER
        self._paused = False
        self._decoder: ContentDecoder | None = None
        self._until_close = False
        self._skip_message = False
        self.complete = False
        self.keep_alive = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.received = False  # any byte of the response
        self.active = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:  # bytes while idle or after the response: not HTTP/1.1
            self.close()  # as we speak it; the connection cannot carry another request
            return
        self._last_data = self._loop.time()
        self.received = True
        parser = self._parser
        assert parser is not None
        try:
            if self.headers is None:
                self._head_bytes += len(data)
                parser.feed_data(data)
                if self.headers is None and self._head_bytes > self._caps.max_header_bytes:
                    raise ResponseTooLarge("headers", self._headers_too_large())
            else:
                buffered = self._buffered
                parser.feed_data(data)
                if self._buffered != buffered:
                    self._framing_bytes = 0
                elif not self.complete:  # no body byte in this read: framing, trailers
                    self._framing_bytes += len(data)
                    if self._framing_bytes > self._caps.max_header_bytes:
                        raise ResponseTooLarge(
                            "headers", f"trailers or chunk framing past {self._caps.max_header_bytes} bytes"
                        )
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
        # llhttp leaves the whitespace after a value in it; RFC 9112 says it is not part of it
        self._header_list.append((name.decode("latin-1"), value.rstrip(b" \t").decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        fields: list[tuple[str, str]] = self._header_list  # type: ignore[assignment]  # not trailers yet
        caps = self._caps
        if len(fields) > caps.max_headers or self._head_bytes > caps.max_header_bytes:
            self._check_head(fields)  # the bytes received may be more than the head: count it
        status = parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: not the response
            self._skip_message = True
            self._header_list = []
            return
        headers = CIMultiDictProxy(CIMultiDict(fields))
        self._header_list = _DISCARD  # trailers
        coding = headers.get("Content-Encoding", "identity").lower()  # (no whitespace around it now)
        if coding in ("gzip", "x-gzip", "deflate"):
            self._decoder = ContentDecoder()
        elif coding not in ("identity", ""):
            raise UpstreamProtocolError(f"unsupported Content-Encoding {coding!r}")
        self.status = status
        self.headers = headers
        if "Content-Length" in headers:  # (llhttp refuses it with a Transfer-Encoding)
            self._until_close = False
        elif "Transfer-Encoding" in headers:  # llhttp would read another coding as a body up to the close
            codings = headers.getall("Transfer-Encoding")
            if len(codings) != 1 or codings[0].lower() != "chunked":
                raise UpstreamProtocolError(f"unsupported Transfer-Encoding {', '.join(codings)!r}")
            self._until_close = False
        else:
            self._until_close = True
        if self._idle_first:
            self._headers_in()
        self._wake()

    def on_body(self, data: bytes) -> None:
        if self._skip_message:
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
        self,
        head: bytes,
        body: bytes,
        first_byte: float | None,
        idle: float | None,
        total: float | None,
        caps: UpstreamSettings = _DEFAULT_CAPS,
    ) -> None:
        """Write one request and start its timers (None: no limit); its reply is read within `caps`.
        Raises RequestNotSent, having written nothing, when this (pooled) connection is found closed."""
        transport = self.transport
        assert transport is not None
        now = self._loop.time()
        # idle since the previous reply's last bytes (the upstream's idle timer starts there too)
        if self.closed or (self.exchanges and now - self._last_data >= POLL_AFTER_IDLE and self._readable()):
            self.close()
            raise RequestNotSent("the upstream had closed the connection")
        self._reset()
        self._caps = caps
        self.active = True
        self.exchanges += 1
        self._parser = httptools.HttpResponseParser(self)
        self._start_deadlines(now, first_byte, idle, total)
        if len(body) <= 65536:
            transport.write(head + body)
        else:
            transport.writelines((head, body))

    async def response_started(self) -> None:
        """Wait for the status line and headers."""
        while self.headers is None:
            await self._wait()

    async def read_all(self) -> bytes:
        """The whole body (reading is not paused: the caller wants it all), within its cap: past
        `max_body_bytes` ResponseTooLarge; an error reply's (status >= 300) cut at
        `max_error_body_bytes`, the connection closed rather than read to its end."""
        cut = self.status >= 300
        limit = self._caps.max_error_body_bytes if cut else self._caps.max_body_bytes
        if self._decoder is not None:
            return await self._read_all_decoded(limit, cut)
        self._high_water = limit  # past it, on_body pauses reading: the sign to stop
        if self._paused and self._buffered <= limit:
            self._resume()
        while not self.complete:
            if self._paused:
                return self._over_limit(limit, cut)
            await self._wait()
        if self._buffered > limit:
            return self._over_limit(limit, cut)
        body = self._body
        self._body = deque()
        self._buffered = 0
        return body[0] if len(body) == 1 else b"".join(body)

    async def read_some(self) -> bytes:
        """What has arrived since the last call (waiting for some); b"" at the end of the body.
        A compressed body comes decoded, at most DECODE_STEP bytes per call."""
        if self._decoder is not None:
            return await self._read_decoded(self._decoder)
        while not self._body:
            if self.complete:
                return b""
            await self._wait()
        return self._take()

    @property
    def buffered(self) -> int:
        """Body bytes received and not read yet (as received: before decoding)."""
        return self._buffered

    @property
    def closed_while_idle(self) -> bool:
        """This reused connection was closed (or reset) before a byte of the answer: what an upstream's
        idle close crossing our request looks like. The upstream may still have read the request."""
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

    def _take(self) -> bytes:
        """Everything buffered, as one bytes object; reading resumes if it was paused."""
        body = self._body
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        if self._paused:
            self._resume()
        return data

    async def _read_decoded(self, decoder: ContentDecoder) -> bytes:
        """read_some for a compressed body: one bounded step of decoding at a time."""
        try:
            while True:
                if decoder.pending:
                    await asyncio.sleep(0)  # the loop runs between steps of one large input
                    if piece := decoder.decode(DECODE_STEP):
                        return piece
                elif self._body:
                    decoder.feed(self._take())
                    if piece := decoder.decode(DECODE_STEP):
                        return piece
                elif self.complete:
                    decoder.end()
                    self._decoder = None
                    return b""
                else:
                    await self._wait()
        except UpstreamProtocolError as exc:  # ContentDecodingError
            self._fail(exc)
            raise

    async def _read_all_decoded(self, limit: int, cut: bool) -> bytes:
        pieces: list[bytes] = []
        size = 0
        while piece := await self.read_some():
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                self._body = deque(pieces)
                self._buffered = size
                return self._over_limit(limit, cut)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _over_limit(self, limit: int, cut: bool) -> bytes:
        """The body went past `limit`: its first `limit` bytes if `cut`, else ResponseTooLarge. The
        rest is never read: the connection is closed."""
        if not cut:
            error = ResponseTooLarge("response", f"a response body larger than {limit} bytes")
            self._fail(error)
            raise error
        body = b"".join(self._body)[:limit]
        self._body.clear()
        self._buffered = 0
        self.close()
        return body

    def _check_head(self, fields: list[tuple[str, str]]) -> None:
        caps = self._caps
        if len(fields) > caps.max_headers:
            raise ResponseTooLarge("headers", f"more than {caps.max_headers} header fields")
        if sum(len(name) + len(value) + 4 for name, value in fields) > caps.max_header_bytes:
            raise ResponseTooLarge("headers", self._headers_too_large())

    def _headers_too_large(self) -> str:
        return f"a status line and headers larger than {self._caps.max_header_bytes} bytes"

    def _readable(self) -> bool:
        """Whether the (idle) socket has something to read: the upstream's FIN, a reset or stray
        bytes — each makes it unusable. poll(2), no read: nothing is consumed."""
        if self._fd < 0:
            return False
        poller = select.poll()
        try:
            poller.register(self._fd, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def _finish_body(self) -> None:
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
