"""Requests aiohttp cannot parse or read, over raw sockets to the gateway as production serves it: a 4xx
in OpenAI's envelope with an x-request-id, a `bad_http_request` log line, and the raw request (a
gateway key in it) in no answer and no log."""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
import structlog
from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text, key_digest
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.gateway_process import GatewayProcess
from tests.support.spec_check import spec_errors

KEY = "gw-SECRET-key-in-the-head-0123456789"
ROUTES = f"""
log: {{level: info, format: json}}
limits: {{max_body_bytes: 4096, max_header_bytes: 2048}}
auth:
  keys: [{{name: team, hash: "{key_digest(KEY)}"}}]
providers: {{mock: {{dialect: mock, transport: mock}}}}
models: {{mock: [{{provider: mock, model: m}}]}}
"""
CHAT = b'{"model":"mock","messages":[{"role":"user","content":"hi"}]}'
AUTH = f"Authorization: Bearer {KEY}\r\n".encode()
REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")
WAIT = 10.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after this answer

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        body: dict[str, Any] = json_codec.loads(self.body)
        assert spec_errors("ErrorResponse", body) == []
        return body["error"]  # type: ignore[no-any-return]


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), WAIT)
    closed = await asyncio.wait_for(reader.read(1), WAIT) == b""
    return Answer(int(status_line.split()[1]), headers, body, closed)


@asynccontextmanager
async def serving(routes: str = ROUTES, inner: Any = None) -> AsyncIterator[int]:
    """The gateway app served by gateway_runner (what the CLI serves with) in this loop: its port."""
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry))
    if inner is not None:
        app.middlewares.append(inner)
    runner = gateway_runner(app, registry.config.limits, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def send(port: int, *parts: bytes) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()


def post(headers: bytes, body: bytes = CHAT) -> bytes:
    return b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n" + AUTH + headers + b"\r\n" + body


# Every case carries the gateway key in its head: aiohttp's own answer and log line quoted it.
UNPARSABLE = [
    pytest.param(
        b"GET /healthz HTTP/1.1\nHost: gw\n" + AUTH.replace(b"\r", b"") + b"\n",
        400,
        "BadStatusLine",
        id="bare-LF",
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + AUTH[:-2] + b"\x00x\r\n\r\n",
        400,
        "BadHttpMessage",
        id="NUL",
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\nHost: gw\r" + AUTH + b"\r\n", 400, "BadHttpMessage", id="bare-CR"
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\n" + AUTH + b"X-Long: " + b"a" * 4096 + b"\r\n\r\n",
        431,
        "LineTooLong",
        id="long-header",
    ),
    pytest.param(b"G@T /healthz HTTP/1.1\r\n" + AUTH + b"\r\n", 400, "BadHttpMethod", id="bad-method"),
    pytest.param(b"GET /healthz HTTP/9.9\r\n" + AUTH + b"\r\n", 400, "BadStatusLine", id="bad-version"),
    pytest.param(
        post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n" + CHAT + b"\r\n0\r\n\r\n"),
        400,
        "BadHttpMessage",
        id="bad-chunk-size",
    ),
    pytest.param(
        post(b"Content-Length: 5\r\nContent-Length: 6\r\n"), 400, "BadHttpMessage", id="two-lengths"
    ),
]
if not HAS_BROTLI:  # aiohttp refuses the coding at the headers when its decoder is not installed
    UNPARSABLE.append(
        pytest.param(
            post(b"Content-Encoding: br\r\nContent-Length: 58\r\n"),
            415,
            "ContentEncodingError",
            id="br-not-installed",
        )
    )
if not HAS_ZSTD:
    UNPARSABLE.append(
        pytest.param(
            post(b"Content-Encoding: zstd\r\nContent-Length: 58\r\n"),
            415,
            "ContentEncodingError",
            id="zstd-not-installed",
        )
    )


@pytest.mark.parametrize(("raw", "status", "reason"), UNPARSABLE)
async def test_an_unparsable_request_is_a_json_4xx_with_an_id_and_nothing_raw_logged(
    raw: bytes, status: int, reason: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with serving() as port:
            answer = await send(port, raw)
    assert answer.status == status
    error = answer.error()
    assert error["type"] == "invalid_request_error"
    assert (
        error["code"]
        == {400: "invalid_http_request", 415: "unsupported_content_encoding", 431: "header_too_large"}[status]
    )
    assert REQUEST_ID.fullmatch(answer.headers["x-request-id"])
    assert answer.closed
    assert KEY not in answer.body.decode("latin-1")
    logged = [e for e in logs if e["event"] == "bad_http_request"]
    assert [(e["status"], e["reason"], e["request_id"]) for e in logged] == [
        (status, reason, answer.headers["x-request-id"])
    ]
    assert KEY not in repr(logs)


async def test_a_body_that_breaks_after_the_handler_started_is_400_at_once() -> None:
    """A bad chunk size sent after the headers: aiohttp queued an answer for later and left the handler
    waiting for the rest of the body until limits.body_timeout (30 s); now the handler's read fails
    at once, it answers 400, and the connection (its framing lost) closes after that one answer."""
    reading = asyncio.Event()

    @web.middleware
    async def signal(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        reading.set()  # the handler runs on to its first wait: reading the body
        return await handler(request)

    with structlog.testing.capture_logs() as logs:
        async with serving(inner=signal) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(post(b"Transfer-Encoding: chunked\r\n", b"5\r\n" + CHAT[:5] + b"\r\n"))
            await writer.drain()
            await asyncio.wait_for(reading.wait(), WAIT)
            started = time.perf_counter()
            writer.write(b"zz\r\n" + CHAT[5:] + b"\r\n0\r\n\r\n")
            await writer.drain()
            answer = await read_answer(reader)
            elapsed = time.perf_counter() - started
            writer.close()
    assert answer.status == 400
    assert answer.error()["code"] == "invalid_request_body"
    assert REQUEST_ID.fullmatch(answer.headers["x-request-id"])
    assert answer.closed  # and no second answer on it (read_answer read to the end)
    assert elapsed < 2.0
    assert [e["status"] for e in logs if e["event"] == "request"] == [400]
    assert KEY not in repr(logs)


async def test_a_body_that_breaks_before_its_handler_starts_fails_in_its_own_payload() -> None:
    """Headers and the broken chunk parsed before the request's handler has started (two reads in one
    loop iteration): the error ends that request's body, not a queued answer of its own after it."""
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    runner = gateway_runner(
        create_app(RegistryHolder("r", registry)), registry.config.limits, shutdown_timeout=2.0
    )
    await runner.setup()
    try:
        assert runner.server is not None
        protocol = runner.server()
        written: list[bytes] = []
        transport = mock.Mock()
        transport.write.side_effect = written.append
        transport.writelines.side_effect = written.extend
        transport.is_closing.return_value = False
        closed = asyncio.Event()
        transport.close.side_effect = lambda: closed.set()
        protocol.connection_made(transport)
        protocol.data_received(post(b"Transfer-Encoding: chunked\r\n", b"5\r\n" + CHAT[:5] + b"\r\n"))
        protocol.data_received(b"zz\r\n")
        await asyncio.wait_for(closed.wait(), WAIT)
    finally:
        await runner.cleanup()
    answer = b"".join(written)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.count(b"HTTP/1.") == 1
    assert b'"code":"invalid_request_body"' in answer


GZIPPED = gzip.compress(CHAT)
BOMB = gzip.compress(b'{"model":"mock","x":"' + b"0" * 1_000_000 + b'"}')  # ~1 KB in, 1 MB out


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        pytest.param(
            post(f"Content-Encoding: gzip\r\nContent-Length: {len(CHAT)}\r\n".encode()),
            400,
            "invalid_content_encoding",
            id="gzip-that-is-not",
        ),
        pytest.param(
            post(f"Content-Encoding: deflate\r\nContent-Length: {len(CHAT)}\r\n".encode()),
            400,
            "invalid_content_encoding",
            id="deflate-that-is-not",
        ),
        pytest.param(
            post(f"Content-Encoding: compress\r\nContent-Length: {len(CHAT)}\r\n".encode()),
            415,
            "unsupported_content_encoding",
            id="compress",
        ),
        pytest.param(
            post(f"Content-Encoding: x-gzip\r\nContent-Length: {len(GZIPPED)}\r\n".encode(), GZIPPED),
            415,
            "unsupported_content_encoding",
            id="x-gzip",
        ),
        pytest.param(
            post(f"Content-Encoding: gzip\r\nContent-Length: {len(BOMB)}\r\n".encode(), BOMB),
            413,
            "request_too_large",
            id="bomb",
        ),
        pytest.param(
            post(f"Content-Encoding: GZIP\r\nContent-Length: {len(GZIPPED)}\r\n".encode(), GZIPPED),
            200,
            None,
            id="gzip",
        ),
        pytest.param(
            post(f"Content-Encoding: identity\r\nContent-Length: {len(CHAT)}\r\n".encode()),
            200,
            None,
            id="identity",
        ),
    ],
)
async def test_content_encoding(raw: bytes, status: int, code: str | None) -> None:
    with structlog.testing.capture_logs() as logs:
        async with serving() as port:
            answer = await send(port, raw.replace(b"Host: gw\r\n", b"Host: gw\r\nConnection: close\r\n"))
    assert answer.status == status, answer.body
    assert REQUEST_ID.fullmatch(answer.headers["x-request-id"])
    if code is not None:
        assert answer.error()["code"] == code
    assert not [e for e in logs if e["event"] in ("unhandled_error", "http_server_error")]


async def test_an_authorization_header_that_is_not_utf8_is_an_invalid_key() -> None:
    raw = post(f"Content-Length: {len(CHAT)}\r\n".encode()).replace(
        AUTH, b"Authorization: Bearer \xff\xfe-\xc3(-key\r\n"
    )
    with structlog.testing.capture_logs() as logs:
        async with serving() as port:
            answer = await send(port, raw.replace(b"Host: gw\r\n", b"Host: gw\r\nConnection: close\r\n"))
    assert answer.status == 401
    assert answer.error()["code"] == "invalid_api_key"
    assert not [e for e in logs if e["event"] == "unhandled_error"]


# ---- the real process: nothing of a malformed request reaches stdout or stderr ----------------------
def test_no_raw_request_bytes_in_the_process_output(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES, encoding="utf-8")
    cases = [cast(bytes, param.values[0]) for param in UNPARSABLE]
    chunk = post(
        b"Connection: close\r\nTransfer-Encoding: chunked\r\n", b"5\r\n" + CHAT[:5] + b"\r\nzz\r\n0\r\n\r\n"
    )
    gzip_that_is_not = post(b"Connection: close\r\nContent-Encoding: gzip\r\nContent-Length: 58\r\n")
    with GatewayProcess(config) as gateway:
        after = gateway.mark()
        for raw in [*cases, chunk, gzip_that_is_not]:
            with socket.create_connection(("127.0.0.1", gateway.port), timeout=WAIT) as sock:
                sock.sendall(raw)
                answer = b"".join(iter(lambda: sock.recv(65536), b""))  # to the server's close
            assert answer.startswith(b"HTTP/1."), answer
            assert KEY.encode() not in answer
        answered = len(cases)
        gateway.wait_for(
            lambda e: sum(x.get("event") == "bad_http_request" for x in gateway.events[after:]) >= answered,
            after=after,
            what=f"{answered} bad_http_request events",
        )
    output = repr(gateway.events)
    assert KEY not in output
    assert "Error handling request" not in output
    assert not [e for e in gateway.events if e.get("event") is None]  # every line is a JSON event
