"""The upstream HTTP/1.1 client against raw-socket servers that write exact bytes: framing (length,
chunked, until-close, gzip, 1xx), keep-alive, timeouts, broken replies, the request it sends."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from gateway.upstream.http1 import Http1Connection
from gateway.upstream.http1_errors import UpstreamProtocolError
from gateway.upstream.pool import ConnectError, ConnectionPool
from tests.upstream.raw_server import RawServer, read_request, replying, response

HEAD = b"POST /v1/x HTTP/1.1\r\nHost: up\r\nContent-Length: 2\r\n\r\n"


async def exchange(
    pool: ConnectionPool,
    server: RawServer,
    *,
    first_byte: float | None = 5.0,
    idle: float | None = 5.0,
    total: float | None = 10.0,
) -> Http1Connection:
    conn = await pool.acquire(pool.target(server.url("/v1/x")), 5.0)
    conn.send(HEAD, b"{}", first_byte, idle, total)
    await conn.response_started()
    return conn


async def test_content_length_body_and_keep_alive() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(response(200, b'{"ok":true}', {"X-Up": "1"}))

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        for _ in range(3):
            conn = await exchange(pool, server)
            assert (conn.status, conn.headers and conn.headers["x-up"]) == (200, "1")
            assert await conn.read_all() == b'{"ok":true}'
            pool.release(conn, conn.finish())
        assert server.connections == 1  # one connection carried all three
        await pool.close()


async def test_request_bytes_are_exact() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response(204, b""))

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        assert (conn.status, await conn.read_all()) == (204, b"")
        pool.release(conn, conn.finish())
        await pool.close()
    assert seen == [HEAD + b"{}"]


async def test_chunked_body_arrives_as_it_is_sent() -> None:
    more = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await more.wait()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        assert await conn.read_some() == b"hello"  # before the rest was even written
        more.set()
        rest = b""
        while chunk := await conn.read_some():
            rest += chunk
        assert rest == b" world"
        assert conn.finish() is True
        pool.release(conn, True)
        await pool.close()


async def test_body_delimited_by_close_is_complete_and_not_reused() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        writer.close()

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        assert await conn.read_all() == b"until the end"
        assert conn.finish() is False
        pool.release(conn, False)
        assert pool.open_connections == 0
        await pool.close()


async def test_connection_close_header_is_honoured() -> None:
    async with RawServer(replying(response(200, b"{}", {"Connection": "close"}))) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        await conn.read_all()
        assert conn.finish() is False
        await pool.close()


async def test_gzip_body_is_decoded_and_informational_responses_skipped() -> None:
    packed = gzip.compress(b'{"answer":42}')

    informational = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    async with RawServer(
        replying(informational + response(200, packed, {"Content-Encoding": "gzip"}))
    ) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        assert conn.status == 200
        assert await conn.read_all() == b'{"answer":42}'
        assert conn.finish() is True
        await pool.close()


async def test_unknown_content_encoding_is_a_protocol_error() -> None:
    async with RawServer(replying(response(200, b"xx", {"Content-Encoding": "br"}))) as server:
        pool = ConnectionPool()
        conn = await pool.acquire(pool.target(server.url("/")), 5.0)
        conn.send(HEAD, b"{}", 5.0, 5.0, 10.0)
        with pytest.raises(UpstreamProtocolError, match="br"):
            await conn.response_started()
        assert conn.finish() is False
        await pool.close()


async def test_garbage_reply_is_a_protocol_error() -> None:
    async with RawServer(replying(b"SSH-2.0-OpenSSH\r\n\r\n")) as server:
        pool = ConnectionPool()
        conn = await pool.acquire(pool.target(server.url("/")), 5.0)
        conn.send(HEAD, b"{}", 5.0, 5.0, 10.0)
        with pytest.raises(UpstreamProtocolError):
            await conn.response_started()
        await pool.close()


async def test_cut_mid_body_is_a_connection_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{" * 1)
        await writer.drain()
        writer.transport.abort()

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        with pytest.raises(ConnectionError):
            await conn.read_all()
        assert conn.finish() is False
        await pool.close()


TIMEOUT_CASES: list[tuple[str, dict[str, float | None], str, str]] = [
    # (where the upstream stops, the timeouts that differ from first_byte 5 / idle 5 / total 10, the error,
    # the timeout that must end the exchange)
    ("before_headers", {"first_byte": 0.05}, "did not answer", "first_byte"),
    ("mid_body", {"idle": 0.05}, "stalled", "idle"),
    ("mid_body", {"total": 0.05, "idle": None}, "did not finish", "total"),
    # idle shorter than first_byte: the idle timeout counts from the headers, not after first_byte
    ("after_headers", {"first_byte": 3.0, "idle": 0.1}, "stalled", "idle"),
    ("mid_body", {"first_byte": 3.0, "idle": 0.1}, "stalled", "idle"),
    ("after_headers", {"first_byte": None, "idle": 0.1, "total": None}, "stalled", "idle"),
]


@pytest.mark.parametrize(
    ("stage", "limits", "message", "deciding"),
    TIMEOUT_CASES,
    ids=[f"{stage}-{'-'.join(f'{k}={v}' for k, v in limits.items())}" for stage, limits, *_ in TIMEOUT_CASES],
)
async def test_timeouts(stage: str, limits: dict[str, float | None], message: str, deciding: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if stage == "after_headers":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        elif stage == "mid_body":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await reader.read()  # until the client gives up

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await pool.acquire(pool.target(server.url("/")), 5.0)
        settings: dict[str, float | None] = {"first_byte": 5.0, "idle": 5.0, "total": 10.0, **limits}
        expected = settings[deciding]
        assert expected is not None

        async def read_to_end() -> None:
            await conn.response_started()
            while await conn.read_some():
                pass

        started = time.monotonic()
        conn.send(HEAD, b"{}", settings["first_byte"], settings["idle"], settings["total"])
        with pytest.raises(TimeoutError, match=message):
            async with asyncio.timeout(6.0):  # a guard: a timer that is never armed would hang here
                await read_to_end()
        elapsed = time.monotonic() - started
        assert expected <= elapsed < expected + 1.0, (
            f"ended after {elapsed:.2f} s, {deciding} is {expected} s"
        )
        assert conn.finish() is False
        await server.wait_closed_connections(1)  # the timed-out connection was closed
        await pool.close()


async def test_connect_refused_is_a_connect_error() -> None:
    async with RawServer(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url("/")
    pool = ConnectionPool()
    with pytest.raises(ConnectError):
        await pool.acquire(pool.target(url), 5.0)  # the server is gone: refused
    await pool.close()


async def test_stream_reader_backpressure_pauses_and_resumes_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.upstream.http1.STREAM_HIGH_WATER", 8)
    sent = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n")
        await writer.drain()
        sent.set()
        writer.write(b"3\r\nxyz\r\n0\r\n\r\n")

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        await sent.wait()
        got = b""
        while chunk := await conn.read_some():
            got += chunk
        assert got == b"0123456789abcdefxyz"
        assert conn.finish() is True
        await pool.close()


async def test_bytes_after_the_response_make_the_connection_unusable() -> None:
    async with RawServer(replying(response(200, b"{}") + response(200, b'{"second":1}'))) as server:
        pool = ConnectionPool()
        conn = await exchange(pool, server)
        assert (conn.status, await conn.read_all()) == (200, b"{}")  # the first answer stands
        assert conn.finish() is False  # but the connection is not reused
        await pool.close()
