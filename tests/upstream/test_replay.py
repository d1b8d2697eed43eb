"""When a request is sent again after its pooled connection failed (Go's rule, in gateway/upstream/transport):
only when nothing of it was written, or when it carries an idempotency key and the reused connection
was closed before any byte of an answer. Otherwise the failure goes to the retry policy as it is: a POST the
upstream may have read is an LLM call it may bill."""

from __future__ import annotations

import asyncio
import select
from types import SimpleNamespace
from typing import Any

import pytest
import uvloop

from gateway.config.model import Timeouts, UpstreamSettings
from gateway.upstream.egress import DIRECT
from gateway.upstream.http1 import Http1Connection
from gateway.upstream.pool import ConnectionPool
from gateway.upstream.transport import HttpTransport, UpstreamFailure
from tests.upstream.raw_server import RawServer, read_request, response, wait_until


def target(**headers: str) -> Any:
    """The parts of a registry Target the transport reads."""
    provider = SimpleNamespace(
        name="up",
        signer=None,
        headers={"Authorization": "Bearer k", **headers},
        egress=DIRECT,
        upstream=UpstreamSettings(),
    )
    return SimpleNamespace(provider=provider, timeouts=Timeouts(connect=5, first_byte=2, idle=2, total=10))


class ClosesAfterOne:
    """Answers the first request of each connection, then reads the next one and closes without answering
    (what an upstream does when its idle close crosses a request it had already read)."""

    def __init__(self) -> None:
        self.requests: list[int] = []  # the connection number of every request read

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(set(self.requests))
        await read_request(reader)
        self.requests.append(number)
        writer.write(response(200, b'{"n":%d}' % number))
        await writer.drain()
        if await read_request(reader):
            self.requests.append(number)


async def answer_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await read_request(reader):
        writer.write(response(200, b"{}"))


async def two_requests(transport: HttpTransport, url: str, key: dict[str, str]) -> bytes:
    async with transport.open(target(**key), url, b"{}") as reply:
        assert await reply.read() == b'{"n":0}'
    async with transport.open(target(**key), url, b"{}") as reply:
        return await reply.read()


async def test_a_request_the_upstream_may_have_read_is_not_sent_again() -> None:
    upstream = ClosesAfterOne()
    async with RawServer(upstream) as server:
        pool = ConnectionPool()
        with pytest.raises(UpstreamFailure) as failure:
            await two_requests(HttpTransport(pool), server.url("/v1/x"), {})
        assert (failure.value.status, failure.value.code, failure.value.kind) == (
            502,
            "upstream_connection_error",
            "broken",
        )
        assert upstream.requests == [0, 0]  # read once each, on one connection: no second copy
        assert server.connections == 1
        await pool.close()


@pytest.mark.parametrize("name", ["Idempotency-Key", "X-Idempotency-Key", "idempotency-key"])
async def test_with_an_idempotency_key_it_is_sent_again_on_a_new_connection(name: str) -> None:
    upstream = ClosesAfterOne()
    async with RawServer(upstream) as server:
        pool = ConnectionPool()
        assert await two_requests(HttpTransport(pool), server.url("/v1/x"), {name: "req-1"}) == b'{"n":1}'
        assert upstream.requests == [0, 0, 1]
        assert server.connections == 2
        await pool.close()


async def test_a_fresh_connection_closed_before_answering_is_not_sent_again_even_with_a_key() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(close_at_once) as server:
        pool = ConnectionPool()
        with pytest.raises(UpstreamFailure):
            async with HttpTransport(pool).open(target(**{"Idempotency-Key": "k"}), server.url("/"), b"{}"):
                pass
        assert server.connections == 1  # a connection's first request is never resent
        await pool.close()


def readable(conn: Http1Connection) -> bool:
    assert conn.transport is not None
    poller = select.poll()
    poller.register(conn.transport.get_extra_info("socket").fileno(), select.POLLIN)
    return bool(poller.poll(0))


async def closed_before_writing() -> None:
    """The upstream closed a pooled connection (idle longer than POLL_AFTER_IDLE: 0 in these tests)
    and its FIN is in the socket, not yet seen by the event loop (reading is paused here to hold it
    there): the socket is polled before the request is written, nothing is written, the request goes on
    a new connection."""
    requests: list[bytes] = []
    paused = asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await read_request(reader))
        writer.write(response(200, b"{}"))
        if len(requests) == 1:
            await paused.wait()  # then close: the FIN reaches a client that is not reading

    async with RawServer(answer_once) as server:
        pool = ConnectionPool()
        transport = HttpTransport(pool)
        async with transport.open(target(), server.url("/v1/x"), b"{}") as reply:
            await reply.read()
            conn = getattr(reply, "_conn")  # noqa: B009 - the pooled connection, to hold its FIN unseen
            assert isinstance(conn, Http1Connection)
        assert conn.transport is not None
        conn.transport.pause_reading()
        paused.set()
        await server.wait_closed_connections(1)
        await wait_until(lambda: readable(conn))  # the FIN has reached the client's socket
        assert not conn.closed  # the client has not noticed
        async with transport.open(target(), server.url("/v1/x"), b"{}") as reply:
            assert await reply.read() == b"{}"
        assert server.connections == 2
        assert len(requests) == 2 and all(requests)  # one whole request on each connection
        await pool.close()


async def test_a_pooled_connection_found_closed_before_writing_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gateway.upstream.http1.POLL_AFTER_IDLE", 0.0)  # as if idle long enough
    await closed_before_writing()


def test_a_pooled_connection_found_closed_before_writing_is_replaced_under_uvloop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gateway.upstream.http1.POLL_AFTER_IDLE", 0.0)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(closed_before_writing())


async def test_a_connection_reused_at_once_is_not_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy connections (reused within POLL_AFTER_IDLE of their last reply) cost no poll(2)."""
    polls: list[Http1Connection] = []
    monkeypatch.setattr(Http1Connection, "_readable", lambda conn: polls.append(conn) or False)
    async with RawServer(answer_all) as server:
        pool = ConnectionPool()
        transport = HttpTransport(pool)
        for _ in range(3):
            async with transport.open(target(), server.url("/v1/x"), b"{}") as reply:
                assert await reply.read() == b"{}"
        assert (server.connections, polls) == (1, [])
        await pool.close()
