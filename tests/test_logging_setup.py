"""JSON-lines logging: lines coalesced per loop iteration (never lost, never reordered), and the
direct access event rendering exactly what structlog's chain renders."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway import log_output, logging_setup
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.log_context import start_request
from gateway.log_output import CoalescedLines
from gateway.logging_setup import AccessLog, configure_logging
from gateway.reload import RegistryHolder

ACCESS_FIELDS: dict[str, Any] = {
    "method": "POST",
    "path": "/v1/chat/completions",
    "status": 200,
    "latency_ms": 412.9,
    "model": "mock",
    "attempts": [{"provider": "mock", "model": "mock-1", "outcome": "ok", "ms": 1.5}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    "odd": object(),  # not JSON: the renderer's fallback (repr) applies on both paths
}


class Output(io.BytesIO):
    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.getvalue().splitlines()]


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> Iterator[Output]:
    """Logging configured for this test only: structlog's configuration, and ours, are put back
    afterwards (and no logger caches this test's configuration)."""
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
        yield Output()
    finally:
        log_output.flush_all()
        real_configure(**saved)
        for lib, (handlers, level, propagate) in zip(libraries, saved_libraries, strict=True):
            lib.handlers, lib.propagate = handlers, propagate
            lib.setLevel(level)


def without_timestamp(line: dict[str, Any]) -> dict[str, Any]:
    assert line["timestamp"].endswith("Z")
    return {k: v for k, v in line.items() if k != "timestamp"}


# ---- the coalesced output ---------------------------------------------------------------------------


class CountingStream(io.BytesIO):
    writes = 0

    def write(self, data: Any, /) -> int:
        self.writes += 1
        return super().write(data)


async def test_an_iterations_first_line_goes_out_at_once_the_rest_together_by_its_end() -> None:
    stream = CountingStream()
    output = CoalescedLines(stream)
    for i in range(5):
        output.write_line(b"line %d" % i)
    assert stream.getvalue() == b"line 0\n"  # at once: the log is not behind the responses sent
    await asyncio.sleep(0)
    assert stream.getvalue() == b"".join(b"line %d\n" % i for i in range(5))
    assert stream.writes == 2
    output.write_line(b"next iteration")
    assert stream.getvalue().endswith(b"line 4\nnext iteration\n")
    assert stream.writes == 3


def test_outside_a_loop_a_line_is_written_at_once() -> None:
    stream = io.BytesIO()
    CoalescedLines(stream).write_line(b"now")
    assert stream.getvalue() == b"now\n"


async def test_a_line_from_another_thread_goes_after_the_buffered_ones() -> None:
    stream = io.BytesIO()
    output = CoalescedLines(stream)
    output.write_line(b"first")
    output.write_line(b"second")
    thread = threading.Thread(target=output.write_line, args=(b"third",))
    thread.start()
    thread.join()
    assert stream.getvalue() == b"first\nsecond\nthird\n"
    output.write_line(b"fourth")
    await asyncio.sleep(0)
    assert stream.getvalue() == b"first\nsecond\nthird\nfourth\n"


async def test_a_big_iteration_is_written_without_waiting_for_its_end() -> None:
    stream = io.BytesIO()
    output = CoalescedLines(stream)
    line = b"x" * 1023
    count = log_output.MAX_BUFFERED // 1024 + 2  # the first line, then more than MAX_BUFFERED
    for _ in range(count):
        output.write_line(line)
    assert stream.getvalue() == (line + b"\n") * count


def test_a_flush_lost_with_its_loop_does_not_strand_later_lines() -> None:
    stream = io.BytesIO()
    output = CoalescedLines(stream)

    async def write_then_stop() -> None:
        output.write_line(b"first")
        output.write_line(b"second")
        asyncio.get_running_loop().stop()  # the loop ends before the scheduled write runs

    loop = asyncio.new_event_loop()
    task = loop.create_task(write_then_stop())
    loop.run_forever()
    loop.close()
    assert task.done()
    assert stream.getvalue() == b"first\n"

    async def write() -> None:
        output.write_line(b"third")
        output.write_line(b"fourth")

    asyncio.run(write())
    assert stream.getvalue() == b"first\nsecond\nthird\nfourth\n"


def test_flush_all_writes_what_is_buffered() -> None:
    stream = io.BytesIO()
    output = CoalescedLines(stream)

    async def write() -> None:
        output.write_line(b"first")
        output.write_line(b"buffered")
        log_output.flush_all()  # what atexit and a fork do
        assert stream.getvalue() == b"first\nbuffered\n"

    asyncio.run(write())


# ---- configure_logging ------------------------------------------------------------------------------


async def test_reconfiguring_flushes_what_the_old_output_buffered(out: Output) -> None:
    configure_logging("info", "json", stream=out)
    structlog.get_logger("t").info("first")
    structlog.get_logger("t").info("buffered")
    assert [line["event"] for line in out.lines()] == ["first"]
    second = Output()
    configure_logging("info", "json", stream=second)
    assert [line["event"] for line in out.lines()] == ["first", "buffered"]
    structlog.get_logger("t").info("after")
    await asyncio.sleep(0)
    assert [line["event"] for line in second.lines()] == ["after"]


async def test_other_events_are_rendered_as_before(out: Output) -> None:
    configure_logging("info", "json", stream=out)
    start_request({"request_id": "req_1"})
    try:
        structlog.get_logger("t").warning("config_warning", detail="d")
        try:
            raise ValueError("boom")
        except ValueError:
            structlog.get_logger("t").exception("unhandled_error", path="/x")
        structlog.get_logger("t").debug("dropped")
    finally:
        start_request({})
    await asyncio.sleep(0)
    warning, error = out.lines()
    assert list(without_timestamp(warning).items()) == [
        ("detail", "d"),
        ("event", "config_warning"),
        ("request_id", "req_1"),
        ("level", "warning"),
    ]
    assert list(error) == ["path", "event", "request_id", "level", "timestamp", "exception"]
    assert error["level"] == "error"
    assert "ValueError: boom" in error["exception"]


# ---- the access event -------------------------------------------------------------------------------


async def test_the_direct_access_event_is_what_structlog_renders(out: Output) -> None:
    configure_logging("info", "json", stream=out)
    start_request({"request_id": "req_0123"})
    try:
        structlog.get_logger("gateway.access").info("request", **ACCESS_FIELDS)
        AccessLog("gateway.access").info("request", **ACCESS_FIELDS)
    finally:
        start_request({})
    await asyncio.sleep(0)
    through_chain, direct = out.lines()
    assert list(without_timestamp(direct).items()) == list(without_timestamp(through_chain).items())
    assert list(direct)[-4:] == ["event", "request_id", "level", "timestamp"]


async def test_the_access_event_respects_the_level(out: Output) -> None:
    configure_logging("warning", "json", stream=out)
    AccessLog("gateway.access").info("request", status=200)
    structlog.get_logger("t").warning("kept")
    await asyncio.sleep(0)
    assert [line["event"] for line in out.lines()] == ["kept"]


async def test_a_log_capture_still_sees_the_access_event(out: Output) -> None:
    configure_logging("info", "json", stream=out)
    with structlog.testing.capture_logs() as events:
        AccessLog("gateway.access").info("request", status=200)
    AccessLog("gateway.access").info("request", status=201)
    await asyncio.sleep(0)
    assert [(e["event"], e["status"]) for e in events] == [("request", 200)]
    assert [line["status"] for line in out.lines()] == [201]


def test_on_a_console_the_access_event_goes_through_structlog(out: Output) -> None:
    configure_logging("info", "console")
    with structlog.testing.capture_logs() as events:
        AccessLog("gateway.access").info("request", status=200)
    assert [(e["event"], e["status"]) for e in events] == [("request", 200)]


ROUTES = """
providers:
  mock: {dialect: mock, transport: mock}
models:
  mock: [{provider: mock, model: mock-1}]
"""


async def test_a_request_logs_one_json_access_line(out: Output) -> None:
    configure_logging("info", "json", stream=out)
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert response.status == 200
        await asyncio.sleep(0)
    access = [line for line in out.lines() if line["event"] == "request"]
    assert len(access) == 1
    line = access[0]
    assert list(line)[:4] == ["method", "path", "status", "latency_ms"]
    assert list(line)[-4:] == ["event", "request_id", "level", "timestamp"]
    assert (line["status"], line["model"], line["provider"], line["level"]) == (200, "mock", "mock", "info")
    assert line["request_id"] == response.headers["x-request-id"]


# ---- aiohttp's and asyncio's loggers ------------------------------------------------------------------
KEY = "gw-SECRET-0123456789abcdef"


async def test_library_records_keep_no_arguments_and_no_exception_message(out: Output) -> None:
    """aiohttp logged "Error handling request" with the parser's exception, whose message quotes the
    raw request head (the gateway key in an Authorization line): none of it may reach the output."""
    configure_logging("info", "json", stream=out)
    try:
        raise ValueError(f"Bad status line: b'GET / HTTP/1.1\\nAuthorization: Bearer {KEY}'")
    except ValueError as exc:
        logging.getLogger("aiohttp.server").error(
            "Error handling request from %s %s", "127.0.0.1", KEY, exc_info=exc
        )
    logging.getLogger("aiohttp.access").info("%s %s", KEY, "GET /")
    logging.getLogger("aiohttp.server").debug("dropped at info")
    logging.getLogger("asyncio").error(f"Task exception was never retrieved\nfuture: <Task {KEY}>")
    await asyncio.sleep(0)
    server, access, task = out.lines()
    assert KEY not in out.getvalue().decode()
    assert (server["event"], server["logger"], server["level"]) == ("library_log", "aiohttp.server", "error")
    assert server["detail"] == "Error handling request from %s %s"
    assert server["reason"] == "ValueError"
    assert "test_logging_setup.py" in server["stack"]
    assert (access["detail"], access["level"]) == ("%s %s", "info")
    assert (task["logger"], task["detail"]) == ("asyncio", "Task exception was never retrieved")


def test_library_loggers_go_only_through_our_handler(out: Output) -> None:
    """Not also to the root logger's handlers, nor Python's last-resort handler (stderr)."""
    configure_logging("warning", "json", stream=out)
    for name in logging_setup.LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        assert [type(h) for h in library.handlers] == [logging_setup.LibraryRecords]
        assert (library.propagate, library.level) == (False, logging.WARNING)
    configure_logging("info", "json", stream=out)  # again: still one handler each
    assert all(len(logging.getLogger(name).handlers) == 1 for name in logging_setup.LIBRARY_LOGGERS)
