"""The edge middleware never writes a second response into one that is already on the wire: when an
exception escapes a handler after its response went out, the client's connection is cut instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import structlog
from aiohttp import web

from gateway.proxy.edge import edge_middleware


async def streams_then_fails(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    raise RuntimeError("a bug after the response started")


async def fails_at_once(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug before anything was sent")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application(middlewares=[edge_middleware])
    app.router.add_get("/stream", streams_then_fails)
    app.router.add_get("/fail", fails_at_once)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode())
        async with asyncio.timeout(5):
            return await reader.read()  # until the server closes the connection
    finally:
        writer.close()


async def test_an_exception_after_the_response_started_cuts_the_connection(port: int) -> None:
    with structlog.testing.capture_logs() as logs:
        raw = await get(port, "/stream")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert raw.count(b"HTTP/1.1 ") == 1  # no 500 written into the body
    assert body == b"d\r\ndata: first\n\n\r\n"  # the chunk sent, and no end of the chunked body
    assert [e["event"] for e in logs if e.get("log_level") == "error"] == ["unhandled_error"]


async def test_an_exception_before_the_response_started_is_a_500(port: int) -> None:
    raw = await get(port, "/fail")
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b'"code":"internal_error"' in raw
