"""SIGTERM drains: the real gateway process stops accepting, lets an in-flight stream finish, then exits 0;
with a short `limits.drain_timeout`, a stream that never finishes is cut and the process still exits 0.

The fake OpenAI upstream (its own thread) holds the stream open on a gate until the test releases it.
The client side is raw sockets, so the test sees exactly what goes over the wire.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI, openai_chat_chunks, sse_reply
from tests.support.gates import Gate
from tests.support.gateway_process import GatewayProcess
from tests.support.routes import OPENAI_ALIAS, routes, write_routes

pytestmark = pytest.mark.subprocess

IO_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0
PROMPT_EXIT = 5.0  # drain_timeout 0.5 s: the process must be gone well within this
STREAM_BODY = json.dumps(
    {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
).encode()


class DrainingGateway(GatewayProcess):
    """GatewayProcess that can be sent SIGTERM once and then waited on (`stop()` would signal again)."""

    def terminate(self) -> int:
        """SIGTERM; returns the log mark from just before it."""
        after = self.mark()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        return after

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self._proc is not None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the gateway did not exit within {timeout} s of SIGTERM") from None


StartGateway = Callable[..., DrainingGateway]


@pytest.fixture
def start_gateway(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> Iterator[StartGateway]:
    """Start the gateway (optionally with `limits`); every one started is stopped at the end."""
    started: list[DrainingGateway] = []

    def start(limits: dict[str, float] | None = None) -> DrainingGateway:
        config = routes(fake_openai.url, fake_anthropic.url)
        if limits:
            config["limits"] = limits
        gateway = DrainingGateway(write_routes(tmp_path / "routes.yaml", config))
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


def open_stream(port: int) -> tuple[socket.socket, bytes]:
    """POST a streamed chat on a raw connection; returns the socket and what was read up to the first
    content chunk ("Hello")."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(STREAM_BODY)}\r\n\r\n"
    ).encode()
    sock.sendall(head + STREAM_BODY)
    seen = b""
    while b'"content":"Hello"' not in seen:
        data = sock.recv(65536)
        assert data, f"the stream ended before its first content chunk: {seen!r}"
        seen += data
    assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
    assert b"transfer-encoding: chunked" in seen.lower()
    return sock, seen


def read_to_eof(sock: socket.socket) -> bytes:
    rest = b""
    while data := sock.recv(65536):
        rest += data
    return rest


def assert_turned_away(port: int) -> None:
    """A new connection is refused, or accepted by the kernel and then closed with no response."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    except ConnectionRefusedError:
        return
    with sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            answer = read_to_eof(sock)
        except (ConnectionResetError, BrokenPipeError):
            return
    assert answer == b"", f"a new connection was served while draining: {answer[:100]!r}"


def assert_still_open(sock: socket.socket) -> None:
    """Nothing to read and no EOF, checked without blocking."""
    sock.setblocking(False)
    try:
        with pytest.raises(BlockingIOError):
            sock.recv(1)
    finally:
        sock.settimeout(IO_TIMEOUT)


def held_stream(fake: FakeOpenAI, gate: Gate) -> None:
    parts = openai_chat_chunks()
    fake.enqueue(sse_reply([*parts[:2], gate, *parts[2:]]))  # role chunk, "Hello", then held


def test_sigterm_drains_an_in_flight_stream_then_exits_0(
    start_gateway: StartGateway, fake_openai: FakeOpenAI
) -> None:
    gateway = start_gateway()
    release = fake_openai.gate("the held stream may finish")
    held_stream(fake_openai, release)
    stream, _ = open_stream(gateway.port)
    idle = socket.create_connection(("127.0.0.1", gateway.port), timeout=IO_TIMEOUT)  # keep-alive, idle
    with stream, idle:
        before_health = gateway.mark()
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        # its access line is in the log before SIGTERM: the only `request` after the mark is the stream's
        gateway.wait_for(lambda e: e.get("path") == "/healthz", after=before_health, what="/healthz access")

        after = gateway.terminate()
        gateway.wait_for_event("draining", after=after)
        assert_turned_away(gateway.port)
        assert read_to_eof(idle) == b""  # the idle keep-alive connection is closed...
        assert_still_open(stream)  # ...while the stream stays open, waiting on its upstream

        release.set()
        rest = read_to_eof(stream)  # the server closes the connection after the stream when draining
    assert rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), rest[-200:]  # complete, chunked body ended
    assert b'"finish_reason":"stop"' in rest
    assert b'"error"' not in rest

    assert gateway.wait_exit() == 0
    events = [e.get("event") for e in gateway.events[after:]]
    assert "draining" in events and "stopped" in events
    assert events.index("draining") < events.index("request") < events.index("stopped")
    access = next(e for e in gateway.events[after:] if e.get("event") == "request")
    assert (access["status"], access["stream"], access["path"]) == (200, True, "/v1/chat/completions")
    fake_openai.only().finished.expect()  # the upstream sent its whole reply


def test_drain_timeout_cuts_a_stream_that_never_finishes(
    start_gateway: StartGateway, fake_openai: FakeOpenAI
) -> None:
    gateway = start_gateway({"drain_timeout": 0.5})
    held_stream(fake_openai, fake_openai.gate("never released during the test"))
    stream, seen = open_stream(gateway.port)
    with stream:
        after = gateway.terminate()
        signalled = time.monotonic()
        gateway.wait_for_event("draining", after=after)
        rest = read_to_eof(stream)  # cut when the drain deadline passes
    assert gateway.wait_exit(PROMPT_EXIT) == 0
    assert time.monotonic() - signalled < PROMPT_EXIT
    body = seen + rest
    assert b"[DONE]" not in body
    assert not body.endswith(b"0\r\n\r\n"), "a cut stream must not look complete at the HTTP level"

    events = [e.get("event") for e in gateway.events[after:]]
    assert events.index("draining") < events.index("stopped")
    fake_openai.only().closed.expect()  # the gateway hung up on the upstream too
    assert not fake_openai.only().finished.is_set()
