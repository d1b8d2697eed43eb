"""The upstream connection pool and HttpTransport: reuse, expiry, the open-connection limit, TLS,
shutdown, the resend of a request that crossed an idle close, URL and header encoding."""

from __future__ import annotations

import asyncio
import ssl
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

from gateway.config.model import Timeouts
from gateway.upstream.http1 import Http1Connection
from gateway.upstream.pool import ConnectError, ConnectionPool, RequestTarget, parse_url
from gateway.upstream.transport import HttpTransport, UpstreamFailure, encode_headers
from tests.upstream.raw_server import RawServer, read_request, response, wait_until


async def answer_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await read_request(reader):
        writer.write(response(200, b"{}"))


async def one_exchange(pool: ConnectionPool, where: RequestTarget) -> Http1Connection:
    """An empty POST on a pooled connection, read to its end and released; returns the connection."""
    conn = await pool.acquire(where, 5.0)
    conn.send(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"", 5, 5, 10)
    await conn.response_started()
    await conn.read_all()
    pool.release(conn, conn.finish())
    return conn


def fake_target(name: str = "up", headers: dict[str, str] | None = None) -> Any:
    """The parts of a registry Target the transport reads."""
    provider = SimpleNamespace(name=name, signer=None, headers=headers or {"Authorization": "Bearer k"})
    return SimpleNamespace(provider=provider, timeouts=Timeouts(connect=5, first_byte=5, idle=5, total=10))


async def test_a_connection_the_upstream_closed_while_idle_is_not_handed_out() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(200, b"{}"))  # then the server closes (idle timeout, say)

    async with RawServer(once) as server:
        pool = ConnectionPool()
        where = pool.target(server.url("/"))
        first = await one_exchange(pool, where)
        await wait_until(lambda: first.closed)  # the server's close has reached the client
        second = await pool.acquire(where, 5.0)
        assert second is not first
        assert server.connections == 2
        await pool.close()


async def test_an_expired_idle_connection_is_closed_not_reused() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(keepalive=30.0)
        where = pool.target(server.url("/"))
        conn = await one_exchange(pool, where)
        conn.idle_since -= 31.0  # idle past the keep-alive time
        fresh = await pool.acquire(where, 5.0)
        assert fresh is not conn and conn.closed
        await server.wait_closed_connections(1)
        await pool.close()


async def test_the_limit_makes_a_request_wait_for_a_free_connection() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        waiting = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: len(pool._waiters) == 1)  # parked: no second connection
        assert not waiting.done() and pool.open_connections == 1
        pool.release(held, True)
        assert await waiting is held  # handed the freed (idle) connection
        await pool.close()


async def test_waiting_for_a_free_connection_counts_against_the_connect_timeout() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1)
        where = pool.target(server.url("/"))
        await pool.acquire(where, 5.0)
        with pytest.raises(TimeoutError):
            await pool.acquire(where, 0.05)
        await pool.close()


async def test_close_closes_idle_and_busy_connections() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool()
        where = pool.target(server.url("/"))
        busy = await pool.acquire(where, 5.0)
        idle = await pool.acquire(where, 5.0)
        pool.release(idle, True)
        await pool.close()
        await server.wait_closed_connections(2)
        assert busy.closed and idle.closed and pool.open_connections == 0
        with pytest.raises(ConnectError):
            await pool.acquire(where, 5.0)


async def test_tls_with_hostname_check() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with RawServer(answer_all, ssl_context=server_context) as server:
        pool = ConnectionPool(ssl_context=client_context)
        conn = await pool.acquire(pool.target(server.url("/", host="localhost")), 5.0)
        conn.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", b"", 5, 5, 10)
        await conn.response_started()
        assert (conn.status, await conn.read_all()) == (200, b"{}")
        with pytest.raises(ConnectError):  # the certificate is for localhost, not 127.0.0.1
            await pool.acquire(pool.target(server.url("/", host="127.0.0.1")), 5.0)
        await pool.close()


async def test_a_request_that_crossed_an_idle_close_is_sent_again_on_a_new_connection() -> None:
    seen: list[int] = []

    async def close_after_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(seen)
        seen.append(number)
        await read_request(reader)
        writer.write(response(200, b'{"n":%d}' % number))
        await writer.drain()
        await read_request(reader)  # the next request on this connection: closed, not answered

    async with RawServer(close_after_one) as server:
        pool = ConnectionPool()
        transport = HttpTransport(pool)
        target = fake_target()
        async with transport.open(target, server.url("/v1/x"), b"{}") as reply:
            assert await reply.read() == b'{"n":0}'
        async with transport.open(target, server.url("/v1/x"), b"{}") as reply:
            assert await reply.read() == b'{"n":1}'  # not a 502: resent on a new connection
        assert server.connections == 2
        await pool.close()


async def test_a_fresh_connection_closed_before_answering_is_a_failure() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(close_at_once) as server:
        pool = ConnectionPool()
        with pytest.raises(UpstreamFailure) as failure:
            async with HttpTransport(pool).open(fake_target(), server.url("/"), b"{}"):
                pass
        assert (failure.value.status, failure.value.kind) == (502, "broken")
        assert server.connections == 1  # never resent: the upstream may have seen it
        await pool.close()


async def test_transport_sends_provider_headers_and_an_exact_request() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response(200, b"{}"))

    async with RawServer(record) as server:
        pool = ConnectionPool()
        target = fake_target(headers={"Authorization": "Bearer k", "Content-Type": "application/json"})
        url = server.url("/v1/chat?api-version=1")
        async with HttpTransport(pool).open(target, url, b'{"a":1}') as reply:
            assert reply.status == 200 and reply.headers["content-length"] == "2"
            await reply.read()
        await pool.close()
    assert seen == [
        (
            f"POST /v1/chat?api-version=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 7\r\n"
            'Authorization: Bearer k\r\nContent-Type: application/json\r\n\r\n{"a":1}'
        ).encode()
    ]


def test_header_values_cannot_inject_headers() -> None:
    with pytest.raises(ValueError, match="invalid upstream header"):
        encode_headers({"Authorization": "Bearer k\r\nX-Evil: 1"})
    with pytest.raises(ValueError, match="invalid upstream header"):
        encode_headers({"X-A\nB": "v"})
    # framing and Host are the client's own
    assert encode_headers({"Host": "x", "Content-Length": "9", "X-A": "1"}) == b"X-A: 1\r\n\r\n"


@pytest.mark.parametrize(
    ("url", "host_header", "path", "port"),
    [
        ("https://api.example.com/v1/chat", "api.example.com", "/v1/chat", 443),
        ("http://api.example.com:8080", "api.example.com:8080", "/", 8080),
        ("http://[::1]:9000/x?a=b%20c", "[::1]:9000", "/x?a=b%20c", 9000),
        # an already-encoded path is sent byte for byte (a SigV4 signature covers it)
        ("https://h/model/anthropic.claude%3A0/converse", "h", "/model/anthropic.claude%3A0/converse", 443),
        ("http://h/models/caf\u00e9 x", "h", "/models/caf%C3%A9%20x", 80),
    ],
)
def test_parse_url(url: str, host_header: str, path: str, port: int) -> None:
    target = parse_url(url)
    assert (target.host_header, target.path, target.port) == (host_header, path, port)


def test_parse_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not an http"):
        parse_url("ftp://h/x")
