"""The upstream connection pool and HttpTransport: reuse, expiry, the limits (all origins, per origin,
waiters, the wait), the hand-over of freed slots, TLS, shutdown, URL and header encoding. (When a request
is sent again: tests/upstream/test_replay.py.)"""

from __future__ import annotations

import asyncio
import ssl
import time
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

from gateway.config.model import Timeouts, UpstreamSettings
from gateway.upstream.dialer import Dialer
from gateway.upstream.egress import DIRECT, Egress, ProxyEndpoint
from gateway.upstream.http1 import Http1Connection
from gateway.upstream.pool import ConnectError, ConnectionPool, PoolSaturated, RequestTarget, parse_url
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


def waiting(pool: ConnectionPool) -> int:
    return sum(figures[3] for figures in pool.stats())


def fake_target(name: str = "up", headers: dict[str, str] | None = None) -> Any:
    """The parts of a registry Target the transport reads."""
    provider = SimpleNamespace(
        name=name,
        signer=None,
        headers=headers or {"Authorization": "Bearer k"},
        egress=DIRECT,
        upstream=UpstreamSettings(),
    )
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
        queued = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)  # parked: no second connection
        assert not queued.done() and pool.open_connections == 1
        pool.release(held, True)
        assert await queued is held  # handed the freed (idle) connection
        await pool.close()


async def test_waiting_for_a_slot_is_not_bounded_by_the_connect_timeout() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        asyncio.get_running_loop().call_later(0.2, pool.release, held, True)
        assert await pool.acquire(where, 0.05) is held  # waited 0.2 s: a busy pool is not a slow upstream
        await pool.close()


async def test_waiting_for_a_slot_ends_after_the_pool_timeout() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=0.2)
        where = pool.target(server.url("/"))
        await pool.acquire(where, 5.0)
        started = time.monotonic()
        with pytest.raises(PoolSaturated, match=r"no connection was free within 0\.2 s"):
            await pool.acquire(where, 5.0)
        assert 0.2 <= time.monotonic() - started < 1.2
        assert waiting(pool) == 0
        await pool.close()


async def test_a_full_wait_queue_refuses_at_once() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, max_waiters=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        queued = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        started = time.monotonic()
        with pytest.raises(PoolSaturated, match="1 requests are waiting"):
            await pool.acquire(where, 5.0)
        assert time.monotonic() - started < 0.5
        pool.release(held, True)
        assert await queued is held
        await pool.close()


async def test_a_waiter_cancelled_after_being_handed_a_connection_passes_it_on() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        first = asyncio.create_task(pool.acquire(where, 5.0))
        second = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 2)
        pool.release(held, True)  # handed to `first`, which has not run yet...
        first.cancel()  # ...and never will: the connection must not be lost with it
        assert await asyncio.wait_for(second, 1.0) is held
        assert first.cancelled()
        await pool.close()


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        first = asyncio.create_task(pool.acquire(where, 5.0))
        second = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 2)
        pool.release(held, False)  # closed: its slot is reserved for `first`...
        first.cancel()  # ...which leaves before using it
        conn = await asyncio.wait_for(second, 1.0)
        assert conn is not held and pool.open_connections == 1
        await pool.close()


async def test_a_freed_slot_is_not_taken_by_a_request_arriving_meanwhile() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        first = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        first.add_done_callback(lambda done: pool.release(done.result(), True))  # used, then freed
        pool.release(held, True)
        late = await pool.acquire(where, 5.0)  # asks before `first` has run: it must wait its turn
        assert late is held and first.done() and first.result() is held
        await pool.close()


async def test_one_origin_at_its_limit_leaves_room_for_the_others() -> None:
    async with RawServer(answer_all) as slow, RawServer(answer_all) as other:
        pool = ConnectionPool(limit=4, per_origin=2, pool_timeout=5.0)
        busy = pool.target(slow.url("/"))
        held = [await pool.acquire(busy, 5.0), await pool.acquire(busy, 5.0)]
        third = asyncio.create_task(pool.acquire(busy, 5.0))
        await wait_until(lambda: waiting(pool) == 1)  # the slow origin's third waits...
        assert (await pool.acquire(pool.target(other.url("/")), 5.0)).closed is False  # ...the other does not
        assert not third.done() and pool.open_connections == 3
        pool.release(held[0], True)
        assert await third is held[0]
        await pool.close()


async def test_the_oldest_waiter_gets_a_freed_slot_whatever_its_origin() -> None:
    async with RawServer(answer_all) as one, RawServer(answer_all) as two:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        held = await pool.acquire(pool.target(one.url("/")), 5.0)
        older = asyncio.create_task(pool.acquire(pool.target(two.url("/")), 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        newer = asyncio.create_task(pool.acquire(pool.target(one.url("/")), 5.0))
        await wait_until(lambda: waiting(pool) == 2)
        pool.release(held, True)  # idle to `one`, then closed to make room for the older waiter
        conn = await older
        assert conn is not held and held.closed and two.connections == 1
        assert not newer.done()
        pool.release(conn, False)
        assert (await newer) is not held
        await pool.close()


async def test_connections_through_different_egresses_are_not_interchangeable() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool()
        url = server.url("/")
        direct = await one_exchange(pool, pool.target(url))
        other = Egress(ssl_context=ssl.create_default_context())  # e.g. another provider's own CA
        assert await pool.acquire(pool.target(url, other), 5.0) is not direct
        assert await pool.acquire(pool.target(url, DIRECT), 5.0) is direct
        assert pool.target(url, other).egress is other and pool.target(url).egress is DIRECT
        await pool.close()


async def test_stats_show_open_idle_and_waiting_per_origin() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=2, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        origin = f"http://127.0.0.1:{server.port}"
        held = [await pool.acquire(where, 5.0), await pool.acquire(where, 5.0)]
        third = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        assert pool.stats() == [(origin, 2, 0, 1)]
        pool.release(held[0], True)
        pool.release(await third, True)
        assert pool.stats() == [(origin, 2, 1, 0)]
        await pool.close()


async def test_configure_applies_new_limits_to_the_live_pool() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        held = await pool.acquire(where, 5.0)
        queued = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        pool.configure(limit=2, per_origin=2, max_waiters=8, pool_timeout=5.0)  # raised: it goes now
        second = await queued
        assert second is not held and pool.open_connections == 2
        pool.configure(limit=1, per_origin=1, max_waiters=8, pool_timeout=5.0)  # lowered: closed as released
        pool.release(second, True)
        assert second.closed and pool.open_connections == 1
        pool.release(held, True)
        assert not held.closed
        await pool.close()


async def test_close_turns_waiters_away() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=5.0)
        where = pool.target(server.url("/"))
        await pool.acquire(where, 5.0)
        queued = asyncio.create_task(pool.acquire(where, 5.0))
        await wait_until(lambda: waiting(pool) == 1)
        await pool.close()
        with pytest.raises(ConnectError, match="closed"):
            await queued


async def test_saturation_is_a_503_that_names_the_origin() -> None:
    async with RawServer(answer_all) as server:
        pool = ConnectionPool(limit=1, pool_timeout=0.1)
        await pool.acquire(pool.target(server.url("/")), 5.0)
        with pytest.raises(UpstreamFailure) as failure:
            async with HttpTransport(pool).open(fake_target(), server.url("/"), b"{}"):
                pass
        assert (failure.value.status, failure.value.code, failure.value.kind) == (
            503,
            "upstream_saturated",
            "saturated",
        )
        assert f"127.0.0.1:{server.port}" in failure.value.message
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
        pool = ConnectionPool(dialer=Dialer(ssl_context=client_context))
        conn = await pool.acquire(pool.target(server.url("/", host="localhost")), 5.0)
        conn.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", b"", 5, 5, 10)
        await conn.response_started()
        assert (conn.status, await conn.read_all()) == (200, b"{}")
        with pytest.raises(ConnectError):  # the certificate is for localhost, not 127.0.0.1
            await pool.acquire(pool.target(server.url("/", host="127.0.0.1")), 5.0)
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


def test_through_a_proxy_a_plain_http_request_is_in_absolute_form_with_the_proxy_credentials() -> None:
    egress = Egress(proxy=ProxyEndpoint("http", "proxy.corp", 3128, "Basic dTpw"))
    target = parse_url("http://api.example.com:8080/v1/x?a=1", egress)
    assert target.path == "http://api.example.com:8080/v1/x?a=1"
    assert target.proxy_header == b"Proxy-Authorization: Basic dTpw\r\n"
    tunnelled = parse_url("https://api.example.com/v1/x", egress)  # https: CONNECT, origin form inside
    assert (tunnelled.path, tunnelled.proxy_header) == ("/v1/x", b"")


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
