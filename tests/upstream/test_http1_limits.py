"""The upstream client's caps (`upstream:` settings) against raw-socket servers: header bytes and fields,
trailers, bodies, error bodies, decoded (gzip / deflate) sizes. Past a cap: a clean error, the connection
closed (never reused), and what was held is bounded by the cap, not by what the upstream sends."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.config.loader import config_from_text
from gateway.config.model import UpstreamSettings
from gateway.engine.registry import build_registry
from gateway.upstream.content_coding import DECODE_STEP
from gateway.upstream.http1 import STREAM_HIGH_WATER, Http1Connection
from gateway.upstream.http1_errors import ResponseTooLarge, UpstreamProtocolError
from gateway.upstream.pool import ConnectionPool
from gateway.upstream.transport import HttpTransport, UpstreamFailure
from tests.upstream.raw_server import Handler, RawServer, read_request, replying, response, wait_until

HEAD = b"POST /v1/x HTTP/1.1\r\nHost: up\r\nContent-Length: 2\r\n\r\n"
DEFAULT = UpstreamSettings()
SMALL = UpstreamSettings(
    max_header_bytes=1024, max_headers=8, max_body_bytes=64 * 1024, max_error_body_bytes=4096
)
MiB = 1024 * 1024


@asynccontextmanager
async def exchange(
    handler: Handler, caps: UpstreamSettings = DEFAULT, first_byte: float = 5.0, idle: float = 5.0
) -> AsyncIterator[tuple[Http1Connection, RawServer]]:
    """A connection that has sent one request to a server running `handler` (headers not awaited)."""
    async with RawServer(handler) as server:
        pool = ConnectionPool()
        conn = await pool.acquire(pool.target(server.url("/v1/x")), 5.0)
        conn.send(HEAD, b"{}", first_byte, idle, 30.0, caps)
        try:
            yield conn, server
        finally:
            conn.finish()
            await pool.close()


def endless(head: bytes, piece: bytes) -> Handler:
    """Writes `head`, then `piece` again and again until the client goes away."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head)
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()

    return handle


def keeping_open(data: bytes) -> Handler:
    """Writes `data` as the reply, then keeps the connection open (for a keep-alive verdict)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await reader.read()

    return handle


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@functools.cache
def zeros_gzip(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    return b"".join(packer.compress(block) for _ in range(size // MiB)) + packer.flush()


async def longest_stall(work: Awaitable[object]) -> tuple[object, float]:
    """`work`'s result (or exception) and the longest time the event loop was held meanwhile."""
    stall = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            stall, last = max(stall, now - last), now

    tick = asyncio.create_task(ticker())
    try:
        result: object = await work
    except Exception as exc:
        result = exc
    done.set()
    await tick
    return result, stall


async def assert_closed(conn: Http1Connection, server: RawServer) -> None:
    assert conn.finish() is False
    await server.wait_closed_connections(1)


# -- headers --------------------------------------------------------------------------------------


HEADER_CASES = {
    "too-many-fields": b"".join(b"X-F%d: v\r\n" % i for i in range(DEFAULT.max_headers + 1)),
    "too-many-bytes": b"".join(b"X-B%d: %s\r\n" % (i, b"v" * 400) for i in range(50)),  # 50 fields, 20 KB
    "one-huge-field": b"X-Big: " + b"v" * (DEFAULT.max_header_bytes + 1) + b"\r\n",
}


@pytest.mark.parametrize("fields", HEADER_CASES.values(), ids=HEADER_CASES.keys())
async def test_headers_past_the_caps_are_refused(fields: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\n{}"
    async with exchange(replying(reply)) as (conn, server):
        with pytest.raises(ResponseTooLarge, match="header") as caught:
            await conn.response_started()
        assert caught.value.part == "headers"
        await assert_closed(conn, server)


async def test_headers_at_the_caps_are_accepted() -> None:
    fields = [(b"X-F%d" % i, b"v" * 100) for i in range(SMALL.max_headers - 1)]
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    assert len(lines) < SMALL.max_header_bytes
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + lines + b"\r\n"
    async with exchange(replying(reply), SMALL) as (conn, _):
        await conn.response_started()
        assert conn.headers is not None and len(conn.headers) == SMALL.max_headers


async def test_an_endless_header_fails_at_the_cap_not_at_a_timeout() -> None:
    """A header value that never ends, sent 64 KiB at a time: refused once past max_header_bytes, long
    before the first-byte timeout (3 s) and without holding what the upstream sends."""
    handler = endless(b"HTTP/1.1 200 OK\r\nX-Endless: ", b"v" * 65536)
    async with exchange(handler, first_byte=3.0) as (conn, server):
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="header"):
            await conn.response_started()
        assert time.monotonic() - started < 1.0
        await assert_closed(conn, server)


async def test_endless_informational_responses_count_against_the_header_cap() -> None:
    handler = endless(b"", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    async with exchange(handler, first_byte=3.0) as (conn, server):
        with pytest.raises(ResponseTooLarge, match="header"):
            await conn.response_started()
        await assert_closed(conn, server)


async def test_endless_trailers_fail_at_the_cap_not_at_a_timeout() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"hello") + b"0\r\nX-Trailer: "
    async with exchange(endless(head, b"t" * 65536), idle=3.0) as (conn, server):
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="trailer"):
            await conn.read_all()
        assert time.monotonic() - started < 1.0
        await assert_closed(conn, server)


async def test_trailers_within_the_caps_are_accepted_and_dropped() -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"{}") + b"0\r\nX-T: 1\r\n\r\n"
    async with exchange(keeping_open(reply)) as (conn, _):
        await conn.response_started()
        assert await conn.read_all() == b"{}"
        assert conn.headers is not None and "X-T" not in conn.headers
        assert conn.finish() is True


# -- bodies ---------------------------------------------------------------------------------------


async def test_a_body_past_the_cap_is_refused_and_the_connection_closed() -> None:
    """A non-streamed read of an upstream that would send 256 MiB: refused at max_body_bytes (64 MiB)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (256 * MiB)
    async with exchange(endless(head, b"x" * 65536)) as (conn, server):
        await conn.response_started()
        with pytest.raises(ResponseTooLarge, match="body") as caught:
            await conn.read_all()
        assert caught.value.part == "response"
        await assert_closed(conn, server)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_not(framing: str) -> None:
    cap = SMALL.max_body_bytes

    def reply(size: int) -> bytes:
        body = b"b" * size
        if framing == "length":
            return response(200, body)
        if framing == "chunked":
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body) + b"0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body

    async with exchange(replying(reply(cap)), SMALL) as (conn, _):
        await conn.response_started()
        assert len(await conn.read_all()) == cap
    async with exchange(replying(reply(cap + 1)), SMALL) as (conn, server):
        await conn.response_started()
        with pytest.raises(ResponseTooLarge):
            await conn.read_all()
        await assert_closed(conn, server)


async def test_an_error_body_is_cut_at_its_cap_and_the_connection_closed() -> None:
    """An error reply's body (status >= 300) is read up to max_error_body_bytes (1 MiB); the rest is not
    read: the connection is closed instead."""
    async with exchange(replying(response(500, b"e" * (3 * MiB)))) as (conn, server):
        await conn.response_started()
        body = await conn.read_all()
        assert body == b"e" * DEFAULT.max_error_body_bytes
        await assert_closed(conn, server)


async def test_an_error_body_under_its_cap_is_whole_and_the_connection_kept() -> None:
    async with exchange(keeping_open(response(503, b'{"error":"busy"}')), SMALL) as (conn, _):
        await conn.response_started()
        assert await conn.read_all() == b'{"error":"busy"}'
        assert conn.finish() is True


async def test_a_stream_buffers_no_more_than_its_high_water_for_a_reader_that_waits() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with exchange(endless(head, chunked(b"s" * 65536))) as (conn, _):
        await conn.response_started()
        assert await conn.read_some()
        await wait_until(lambda: conn.buffered > STREAM_HIGH_WATER)  # the reader does not read: paused
        for _ in range(20):  # the loop turns; the upstream goes on writing
            await asyncio.sleep(0)
        assert conn.buffered < STREAM_HIGH_WATER + 512 * 1024  # + what the last read brought, no more


# -- content coding -------------------------------------------------------------------------------


async def test_a_gzip_bomb_is_refused_at_the_body_cap_without_holding_the_loop() -> None:
    """256 KiB of gzip that decodes to 256 MiB: refused once the decoded body passes max_body_bytes
    (64 MiB), decoded in steps (the event loop is never held for long), the connection closed."""
    packed = zeros_gzip(256 * MiB)
    assert len(packed) < 300 * 1024
    async with exchange(replying(response(200, packed, {"Content-Encoding": "gzip"}))) as (conn, server):
        await conn.response_started()
        result, stall = await longest_stall(conn.read_all())
        assert isinstance(result, ResponseTooLarge), result
        assert stall < 0.25, f"the event loop was held {stall * 1000:.0f} ms"
        await assert_closed(conn, server)


async def test_a_gzip_error_body_is_cut_at_its_decoded_cap() -> None:
    packed = zeros_gzip(8 * MiB)
    async with exchange(replying(response(502, packed, {"Content-Encoding": "gzip"}))) as (conn, server):
        await conn.response_started()
        assert await conn.read_all() == bytes(DEFAULT.max_error_body_bytes)
        await assert_closed(conn, server)


async def test_a_gzip_stream_is_decoded_in_bounded_steps() -> None:
    packed = zeros_gzip(8 * MiB)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with exchange(keeping_open(head + chunked(packed) + b"0\r\n\r\n")) as (conn, _):
        await conn.response_started()
        sizes = []
        while piece := await conn.read_some():
            assert piece == bytes(len(piece))
            sizes.append(len(piece))
        assert sum(sizes) == 8 * MiB
        assert max(sizes) <= DECODE_STEP
        assert conn.finish() is True


@pytest.mark.parametrize("coding", ["gzip", "deflate", "x-gzip"])
async def test_a_compressed_body_is_decoded(coding: str) -> None:
    text = b'{"answer":42}' * 1000
    packed = gzip.compress(text) if "gzip" in coding else zlib.compress(text)
    async with exchange(keeping_open(response(200, packed, {"Content-Encoding": coding}))) as (conn, _):
        await conn.response_started()
        assert await conn.read_all() == text
        assert conn.finish() is True


async def test_gzip_members_are_all_decoded() -> None:
    packed = gzip.compress(b"first ") + gzip.compress(b"second")
    async with exchange(replying(response(200, packed, {"Content-Encoding": "gzip"}))) as (conn, _):
        await conn.response_started()
        assert await conn.read_all() == b"first second"


BROKEN_GZIP: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda packed: packed[: len(packed) // 2],
    "corrupt": lambda packed: packed[:12] + bytes(b ^ 0xFF for b in packed[12:20]) + packed[20:],
    "garbage-after-the-end": lambda packed: packed + b"garbage!",
}


@pytest.mark.parametrize("breaking", BROKEN_GZIP.values(), ids=BROKEN_GZIP.keys())
async def test_a_broken_gzip_body_is_a_protocol_error_not_partial_data(
    breaking: Callable[[bytes], bytes],
) -> None:
    packed = breaking(gzip.compress(bytes(range(256)) * 64))
    async with exchange(replying(response(200, packed, {"Content-Encoding": "gzip"}))) as (conn, _):
        await conn.response_started()
        with pytest.raises(UpstreamProtocolError, match="compressed"):
            await conn.read_all()
        assert conn.finish() is False


async def test_an_empty_body_with_a_content_coding_is_empty() -> None:
    async with exchange(keeping_open(response(200, b"", {"Content-Encoding": "gzip"}))) as (conn, _):
        await conn.response_started()
        assert await conn.read_all() == b""
        assert conn.finish() is True


# -- where the caps come from ---------------------------------------------------------------------


@pytest.mark.parametrize(("cap", "fits"), [(4096, True), (1024, False)])
async def test_the_caps_are_the_registry_configs(cap: int, fits: bool) -> None:
    """A registry built with `upstream: {max_body_bytes: ...}` gives every provider those caps, and the
    transport reads its replies within them (a reload builds a new registry: new caps)."""
    async with RawServer(keeping_open(response(200, b"x" * 2000))) as server:
        config = {
            "upstream": {"max_body_bytes": cap},
            "providers": {"up": {"dialect": "openai", "base_url": server.url("/v1")}},
            "models": {"m": {"provider": "up", "model": "m"}},
        }
        registry = build_registry(config_from_text(json.dumps(config), "caps.yaml", {}))
        target = registry.routes["m"].first
        assert target.provider.upstream.max_body_bytes == cap
        pool = ConnectionPool()
        try:
            async with HttpTransport(pool).open(target, server.url("/v1/chat/completions"), b"{}") as reply:
                if fits:
                    assert await reply.read() == b"x" * 2000
                else:
                    with pytest.raises(UpstreamFailure) as caught:
                        await reply.read()
                    failure = caught.value
                    assert (failure.status, failure.code, failure.kind) == (
                        502,
                        "upstream_response_too_large",
                        "broken",
                    )
                    assert "larger than 1024 bytes" in failure.message
        finally:
            await pool.close()
