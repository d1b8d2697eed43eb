"""Streams that fail after their 200 went out, through the real app: the client's body is one HTTP
response whose chunked body ends with an error event then [DONE] (never a second response written into
it), and the failure is recorded — the stream outcome on the access log (request and attempt), in
`gateway_stream_outcomes_total`, and against the target's cooldown.

Everything runs in the test's event loop: a raw upstream (exact bytes, chunked, then the fault), the
gateway served as `gateway.cli.serve` serves it, and a raw HTTP/1.1 client that reads the response to
the end of the connection, so what is on the wire is checked byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from aiohttp import web

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.engine.stream_translator import StreamTranslator
from gateway.framing.events import StreamEvent
from gateway.observability.keys import METRICS
from gateway.reload import RegistryHolder
from gateway.routing.cooldown import CooldownPolicy, Cooldowns
from gateway.server import gateway_runner
from tests.support.aws_eventstream import event as aws_event
from tests.upstream.raw_server import RawServer, read_request

IDLE = 0.4  # the upstream idle timeout: a stall mid-stream ends after this long
MAX_EVENT = 4096  # upstream.max_event_bytes
COOLDOWN = {"failures": 1, "window": 60, "duration": 30}  # one failure rests the target
SECRET = "sk-upstream-key-DO-NOT-LEAK-42"

SSE = "text/event-stream"
EVENTSTREAM = "application/vnd.amazon.eventstream"


class Stall:
    """Send nothing more until the gateway closes the connection."""


class Reset:
    """Drop the connection here (no end of the chunked body)."""


Part = bytes | Stall | Reset


def openai_chunk(text: str) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def anthropic_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


ANTHROPIC_START = anthropic_event(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 0},
        },
    },
) + anthropic_event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
ANTHROPIC_DELTA = anthropic_event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
)
BEDROCK_START = aws_event("messageStart", b'{"role":"assistant"}')
BEDROCK_DELTA = aws_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}')


def _bad_crc(message: bytes) -> bytes:
    return message[:-1] + bytes([message[-1] ^ 0xFF])


@dataclass(frozen=True)
class Case:
    id: str
    model: str  # openai (passed through), claude (translated SSE), bedrock (translated event stream)
    content_type: str
    parts: Sequence[Part]
    code: str  # the error event's code
    outcome: str  # the stream outcome recorded
    upstream_fault: bool = True  # counts against the target's cooldown


CASES = [
    # bytes that are not an AWS event stream, a bad CRC, a message over the cap (item 5)
    Case(
        "bedrock-not-eventstream",
        "bedrock",
        EVENTSTREAM,
        [BEDROCK_START, BEDROCK_DELTA, b'{"message":"this is JSON, not an event stream"}'],
        "upstream_invalid_event",
        "invalid",
    ),
    Case(
        "bedrock-bad-crc",
        "bedrock",
        EVENTSTREAM,
        [BEDROCK_START, BEDROCK_DELTA, _bad_crc(BEDROCK_DELTA)],
        "upstream_invalid_event",
        "invalid",
    ),
    Case(
        "bedrock-message-too-large",
        "bedrock",
        EVENTSTREAM,
        [BEDROCK_START, BEDROCK_DELTA, aws_event("contentBlockDelta", b"x" * MAX_EVENT)],
        "upstream_event_too_large",
        "too_large",
    ),
    Case(
        "bedrock-cut",
        "bedrock",
        EVENTSTREAM,
        [BEDROCK_START, BEDROCK_DELTA, BEDROCK_DELTA[:20]],
        "upstream_stream_truncated",
        "truncated",
    ),
    # passed through (item 3, 7)
    Case(
        "openai-event-too-large",
        "openai",
        SSE,
        [openai_chunk("Hi"), b"data: " + b"x" * MAX_EVENT],
        "upstream_event_too_large",
        "too_large",
    ),
    Case(
        "openai-cut",
        "openai",
        SSE,
        [openai_chunk("Hi"), b'data: {"id":'],
        "upstream_stream_truncated",
        "truncated",
    ),
    Case("openai-reset", "openai", SSE, [openai_chunk("Hi"), Reset()], "upstream_connection_error", "broken"),
    Case("openai-stall", "openai", SSE, [openai_chunk("Hi"), Stall()], "upstream_timeout", "timeout"),
    # translated SSE
    Case(
        "claude-cut",
        "claude",
        SSE,
        [ANTHROPIC_START, ANTHROPIC_DELTA],
        "upstream_stream_truncated",
        "truncated",
    ),
    Case(
        "claude-event-too-large",
        "claude",
        SSE,
        [ANTHROPIC_START, b"event: ping\ndata: " + b"x" * MAX_EVENT],
        "upstream_event_too_large",
        "too_large",
    ),
    Case(
        "claude-not-json",
        "claude",
        SSE,
        [ANTHROPIC_START, b"event: content_block_delta\ndata: {not json\n\n"],
        "upstream_invalid_event",
        "invalid",
    ),
    Case(
        "claude-error-event",
        "claude",
        SSE,
        [
            ANTHROPIC_START,
            anthropic_event(
                "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
        ],
        "overloaded",  # the dialect's code for Anthropic's overloaded_error
        "upstream_error",
    ),
]


# ---- the rig ---------------------------------------------------------------------------------------


def scripted(content_type: str, parts: Sequence[Part]) -> Any:
    """An upstream handler: a 200 with a chunked body made of `parts`, then the end of the body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for part in parts:
            if isinstance(part, Stall):
                await reader.read()  # until the gateway gives up and closes
                return
            if isinstance(part, Reset):
                writer.transport.abort()
                return
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    return handle


@dataclass
class Gateway:
    port: int
    app: web.Application
    cooldowns: Cooldowns


@asynccontextmanager
async def running_gateway(upstream_url: str) -> AsyncIterator[Gateway]:
    def provider(dialect: str, **extra: Any) -> dict[str, Any]:
        timeouts = {"connect": 2, "first_byte": IDLE, "idle": IDLE, "total": 10}
        return {
            "dialect": dialect,
            "base_url": upstream_url,
            "api_key": SECRET,
            "timeouts": timeouts,
            "cooldown": COOLDOWN,
            **extra,
        }

    config = {
        "log": {"level": "info", "format": "json"},
        "upstream": {"max_event_bytes": MAX_EVENT},
        "providers": {
            "up-openai": provider("openai"),
            "up-claude": provider("anthropic"),
            "up-bedrock": provider("bedrock"),
        },
        "models": {
            "openai": {"provider": "up-openai", "model": "gpt"},
            "claude": {"provider": "up-claude", "model": "claude"},
            "bedrock": {"provider": "up-bedrock", "model": "anthropic.claude"},
        },
    }
    registry = build_registry(config_from_text(json.dumps(config), "streams.yaml", {}))
    cooldowns = Cooldowns()
    app = create_app(RegistryHolder("streams.yaml", registry), cooldowns=cooldowns)
    runner = gateway_runner(app, registry.config.limits, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield Gateway(runner.addresses[0][1], app, cooldowns)
    finally:
        await runner.cleanup()


async def raw_stream_request(port: int, model: str) -> bytes:
    """POST a streamed chat request over a fresh connection and read until the gateway closes it."""
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


def one_chunked_response(raw: bytes) -> tuple[bytes, bytes]:
    """(head, body) of the one HTTP response `raw` must be: a chunked body that ends properly with
    nothing after it (a second response written into the body breaks the chunk framing)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"transfer-encoding: chunked" in head.lower()
    body = bytearray()
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        assert sep, f"chunked body cut short after {bytes(body[-200:])!r}"
        size = int(size_line, 16)  # a status line here would not parse
        if size == 0:
            assert rest == b"\r\n", f"bytes after the end of the chunked body: {rest[:200]!r}"
            return head, bytes(body)
        body += rest[:size]
        assert rest[size : size + 2] == b"\r\n", f"bad chunk framing near {rest[size : size + 60]!r}"
        rest = rest[size + 2 :]


def sse_data(body: bytes) -> list[str]:
    return [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]


def request_events(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e.get("event") == "request"]


def stream_outcomes(gateway: Gateway) -> dict[tuple[str, str, str], float]:
    text = gateway.app[METRICS].render()[0].decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("gateway_stream_outcomes_total{"):
            labels, _, value = line.partition("} ")
            pairs = dict(item.split("=", 1) for item in labels.split("{", 1)[1].split(","))
            found[(pairs["model"].strip('"'), pairs["provider"].strip('"'), pairs["outcome"].strip('"'))] = (
                float(value)
            )
    return found


# ---- the cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_stream_failing_after_its_200_ends_with_one_error_event_and_is_recorded(case: Case) -> None:
    upstream_server = RawServer(scripted(case.content_type, case.parts))
    async with upstream_server as upstream, running_gateway(upstream.url("")) as gateway:
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            raw = await raw_stream_request(gateway.port, case.model)
        elapsed = time.monotonic() - started
        await upstream.wait_closed_connections(1)  # the gateway let go of the failed upstream
        outcomes = stream_outcomes(gateway)

    _, body = one_chunked_response(raw)
    *before, error, done = sse_data(body)
    assert done == "[DONE]"
    assert json.loads(error)["error"]["code"] == case.code
    assert all("error" not in json.loads(chunk) for chunk in before)
    if any(isinstance(p, Stall) for p in case.parts):
        assert IDLE <= elapsed < IDLE + 1.0, elapsed
    else:
        assert elapsed < 1.0, elapsed

    [access] = request_events(logs)
    assert (access["status"], access["stream_outcome"]) == (200, case.outcome)
    [attempt] = access["attempts"]
    assert (attempt["outcome"], attempt["stream_outcome"]) == ("ok", case.outcome)
    provider = f"up-{case.model}"
    assert outcomes == {(case.model, provider, case.outcome): 1.0}
    model = {"openai": "gpt", "claude": "claude", "bedrock": "anthropic.claude"}[case.model]
    status = gateway.cooldowns.status((provider, model), CooldownPolicy(**COOLDOWN))
    assert status == ("resting" if case.upstream_fault else "ok")


async def test_a_complete_stream_is_recorded_as_ok_and_clears_the_cooldown() -> None:
    parts = [openai_chunk("Hi"), b"data: [DONE]\n\n"]
    async with RawServer(scripted(SSE, parts)) as upstream, running_gateway(upstream.url("")) as gateway:
        gateway.cooldowns.failed(("up-openai", "gpt"), CooldownPolicy(failures=5))
        with structlog.testing.capture_logs() as logs:
            raw = await raw_stream_request(gateway.port, "openai")
        outcomes = stream_outcomes(gateway)
        status = gateway.cooldowns.status(("up-openai", "gpt"), CooldownPolicy(**COOLDOWN))
        failures_left = gateway.cooldowns.failed(("up-openai", "gpt"), CooldownPolicy(failures=2))
    _, body = one_chunked_response(raw)
    assert body == b"".join(parts)
    [access] = request_events(logs)
    assert access["stream_outcome"] == "ok"
    assert outcomes == {("openai", "up-openai", "ok"): 1.0}
    assert status == "ok" and not failures_left  # the earlier failure was forgotten


async def test_a_gateway_bug_mid_stream_ends_the_stream_with_an_error_event_not_a_second_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not an upstream failure: any exception once the 200 is out still becomes an error event in the
    stream, and the target is not blamed for it."""
    real = StreamTranslator.on_event

    def buggy(self: StreamTranslator, event: StreamEvent) -> bytes:
        if event.event == "content_block_delta":
            raise RuntimeError("a bug in the gateway")
        return real(self, event)

    monkeypatch.setattr(StreamTranslator, "on_event", buggy)
    parts = [ANTHROPIC_START, ANTHROPIC_DELTA]
    async with RawServer(scripted(SSE, parts)) as upstream, running_gateway(upstream.url("")) as gateway:
        with structlog.testing.capture_logs() as logs:
            raw = await raw_stream_request(gateway.port, "claude")
        status = gateway.cooldowns.status(("up-claude", "claude"), CooldownPolicy(**COOLDOWN))
    _, body = one_chunked_response(raw)
    *_, error, done = sse_data(body)
    assert (json.loads(error)["error"]["code"], done) == ("internal_error", "[DONE]")
    assert [e["event"] for e in logs if e.get("log_level") == "error"] == ["stream_relay_failed"]
    [access] = request_events(logs)
    assert access["stream_outcome"] == "internal_error"
    assert status == "ok"


async def test_upstream_error_events_are_redacted_before_they_reach_the_client() -> None:
    message = f"bad request: x-api-key: {SECRET} was refused"
    parts = [
        ANTHROPIC_START,
        anthropic_event(
            "error", {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        ),
    ]
    async with RawServer(scripted(SSE, parts)) as upstream, running_gateway(upstream.url("")) as gateway:
        raw = await raw_stream_request(gateway.port, "claude")
    _, body = one_chunked_response(raw)
    assert SECRET.encode() not in body
    *_, error, _ = sse_data(body)
    assert "[REDACTED]" in json.loads(error)["error"]["message"]
