"""A log stream that fails (the reader of a pipe went away, a closed file, a full disk) costs log
lines, never a request: `CoalescedLines` drops what it cannot write and says how much."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway import log_output, logging_setup
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.log_output import CoalescedLines
from gateway.logging_setup import configure_logging
from gateway.reload import RegistryHolder

ROUTES = """
providers: {mock: {dialect: mock, transport: mock}}
models:
  mock: [{provider: mock, model: m}]
"""
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


class FailingStream(io.BytesIO):
    """Fails every write with `error` while `failing`; counts the attempts."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.failing = True
        self.attempts = 0

    def write(self, data: Any, /) -> int:
        self.attempts += 1
        if self.failing:
            raise self.error
        return super().write(data)


def test_a_broken_pipe_drops_the_lines_and_stops_writing() -> None:
    stream = FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    output = CoalescedLines(stream)
    for line in (b"one", b"two", b"three"):
        output.write_line(line)  # outside a loop: each is written at once, or not at all
    output.flush()
    assert stream.attempts == 1  # the reader is gone for good: no write after the first failure
    assert output.dropped_lines == 3


def test_a_closed_stream_drops_the_lines() -> None:
    stream = io.BytesIO()
    stream.close()
    output = CoalescedLines(stream)
    output.write_line(b"late")
    assert output.dropped_lines == 1


def test_a_passing_failure_costs_only_the_lines_it_hit() -> None:
    stream = FailingStream(OSError(errno.ENOSPC, "No space left on device"))
    output = CoalescedLines(stream)
    output.write_line(b"lost")
    stream.failing = False
    output.write_line(b"kept")
    assert stream.getvalue() == b"kept\n"
    assert output.dropped_lines == 1


async def test_inside_a_loop_nothing_reaches_the_loops_exception_handler() -> None:
    loop = asyncio.get_running_loop()
    handled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: handled.append(context))
    try:
        output = CoalescedLines(FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe")))
        output.write_line(b"first")  # written at once: fails here
        output.write_line(b"second")  # buffered for the end of the iteration: dropped there
        done = asyncio.Event()
        loop.call_soon(done.set)  # after the end-of-iteration write
        await done.wait()
    finally:
        loop.set_exception_handler(None)
    assert handled == []
    assert output.dropped_lines == 2


@pytest.fixture
def logging_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = structlog.get_config()
    libraries = [logging.getLogger(name) for name in logging_setup.LIBRARY_LOGGERS]
    saved_libraries = [(lib.handlers, lib.level, lib.propagate) for lib in libraries]
    monkeypatch.setattr(logging_setup, "_direct", None)
    monkeypatch.setattr(logging_setup, "_output", None)
    real_configure = structlog.configure

    def configure_uncached(**kw: Any) -> None:
        real_configure(**{**kw, "cache_logger_on_first_use": False})

    monkeypatch.setattr(structlog, "configure", configure_uncached)
    try:
        yield
    finally:
        log_output.flush_all()
        real_configure(**saved)
        for lib, (handlers, level, propagate) in zip(libraries, saved_libraries, strict=True):
            lib.handlers, lib.propagate = handlers, propagate
            lib.setLevel(level)


@pytest.mark.usefixtures("logging_restored")
async def test_requests_are_answered_when_the_log_pipe_is_broken() -> None:
    stream = FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    configure_logging("info", "json", stream=stream)
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
        for _ in range(3):
            response = await client.post("/v1/chat/completions", json=CHAT)
            assert response.status == 200
            assert (await response.json())["object"] == "chat.completion"
    assert stream.attempts >= 1
