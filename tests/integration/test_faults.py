"""Fault injection: every upstream fault, streamed or not, with and without a healthy fallback, and what
the client gets — driven with the official `openai.AsyncOpenAI`, plus raw SSE bytes where a stream
fails after it started.

Everything runs in the test's own event loop: the gateway app (served by `gateway_runner`, with
`handler_cancellation=True`, as `gateway.cli.serve` does), two `ChaosUpstream`s (the primary, which
misbehaves on demand, and a healthy fallback), and the clients. The gateway gets a fake clock for its
cooldowns and a seeded RNG for its load balancing, so nothing here waits on wall-clock time except a
fault's own slowness inside the chaos upstream (a stall lasts until the gateway's 0.5 s timeout).
Every case asserts how long the client waited: at least what the timeout that decides it takes, at
most SLACK (1 s) more; stalls after the headers are also run with idle (0.3 s) < first_byte (2 s).

Leak accounting — the choice made here. The gateway keeps healthy upstream connections in its
keep-alive pool, so "no upstream connection open" is not something to assert while it runs; and
counting only after closing its client session would prove nothing, because closing the pool also
closes every connection a bug left behind. So each case is checked in three ways:

1. While the gateway is still running, every upstream connection that carried a fault must be closed:
   `TrackedChaos` knows which of its connections are *parked* (waiting for their next request after a
   complete reply, i.e. pooled) and which are in the middle of an exchange; `settle()` waits until
   every open connection is parked. A connection left stalled, half-read or held fails the case.
2. A case sends its requests one at a time and ends with a healthy request to the primary, so a
   gateway that pools correctly never needs more than one connection per upstream. A connection
   checked out of the pool and never released nor closed would force a second one.
3. At teardown the gateway is shut down, and then both chaos upstreams must count zero connections.

Tasks: the set of tasks in the loop is taken before the servers start. After each case (clients
closed), every task created since must have finished, except the chaos upstreams' own parked
connection handlers (checked by 1 and 3); after teardown, every task created since must have finished.


"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
import pytest
import structlog
from aiohttp import web

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from gateway.routing.cooldown import Cooldowns
from gateway.server import gateway_runner
from tests.support.chaos_upstream import CHAT, ChaosUpstream, _chunked, _head, chunk
from tests.support.openai_spec import assert_error_body, assert_valid_stream
from tests.support.servers import closed_port

USER = [{"role": "user", "content": "Say hello"}]
CLIENT_KEY = "sk-client-faults"
SETTLE_TIMEOUT = 5.0
SEED = 20261122

# tight timeouts so that stalls resolve fast
TIMEOUTS = {"connect": 1, "first_byte": 0.5, "idle": 0.5, "total": 5}
# idle shorter than first_byte: a stall after the headers must end after `idle`, not `first_byte`
SHORT_IDLE = {"connect": 1, "first_byte": 2, "idle": 0.3, "total": 5}
# the upstream client's caps, small enough that the faults past them stay fast
CAPS = {"max_body_bytes": 1024 * 1024, "max_error_body_bytes": 64 * 1024, "max_headers": 128}
SLACK = 1.0  # seconds an outcome may take beyond the timeout that decides it
TRICKLE_GAP = 0.05  # ChaosUpstream's default
RETRY = {"attempts": 3, "initial_backoff": 0.01, "max_backoff": 0.02, "max_retry_after": 1}
FLAKY_COOLDOWN = {"failures": 2, "window": 60, "duration": 30}

# =================================================================================================
# The chaos upstream, instrumented
# =================================================================================================


class TrackedChaos(ChaosUpstream):
    """A ChaosUpstream that also tracks its connections and labels its good replies.

    - `parked`: connections waiting for their next request after a complete reply (pooled by the
      gateway); every other open connection is in the middle of an exchange.
    - `connection_tasks`: its own per-connection handler tasks (excluded from the task-leak check
      while they are parked).
    - good replies say who sent them: the completion's content is the label; a stream's content is the
      label then ".".
    - extra fault `status:429:<seconds>`: a 429 whose Retry-After is <seconds>.
    - a request body may name its own fault per label, `{"chaos_fault": {"primary": "status:500"}}`
      (passed through by the openai dialect): it takes precedence over the queue. The soak uses it,
      because with concurrent requests the queue's order is not the requests' order.
    """

    def __init__(self, label: str, trickle_gap: float = 0.05) -> None:
        super().__init__(trickle_gap)
        self.label = label
        self.parked = 0
        self.accepted = 0
        self.connection_tasks: set[asyncio.Task[Any]] = set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connection_tasks.add(task)
        self.accepted += 1
        try:
            await super()._connection(reader, writer)
        finally:
            self.connection_tasks.discard(task)

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        await self._set_parked(+1)
        try:
            return await super()._read_request(reader)
        finally:
            await self._set_parked(-1)

    async def _set_parked(self, delta: int) -> None:
        async with self.changed:
            self.parked += delta
            self.changed.notify_all()

    async def wait_parked(self, within: float = SETTLE_TIMEOUT) -> None:
        """Until every open connection is parked (no connection is left in the middle of an exchange)."""
        try:
            async with asyncio.timeout(within), self.changed:
                await self.changed.wait_for(lambda: self.open_connections == self.parked)
        except TimeoutError:
            busy = self.open_connections - self.parked
            raise AssertionError(
                f"{self.label}: {busy} upstream connection(s) still mid-exchange after {within} s"
            ) from None

    async def _serve(
        self, fault: str, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        chosen = body.get("chaos_fault")
        if isinstance(chosen, dict) and self.label in chosen:
            fault = str(chosen[self.label])
        if fault == "ok" and body.get("stream") is True:
            parts = [chunk(self.label), chunk("."), chunk(None, "stop"), b"data: [DONE]\n\n"]
            head = _head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
            writer.write(head + b"".join(_chunked(p) for p in parts) + b"0\r\n\r\n")
            await writer.drain()
            return True
        if fault == "ok":
            reply = json.loads(json.dumps(CHAT))
            reply["choices"][0]["message"]["content"] = self.label
            self._write_json(writer, 200, reply, {})
            await writer.drain()
            return True
        if fault.startswith("status:429:"):
            error = {"error": {"message": "slow down", "type": "requests", "param": None, "code": None}}
            self._write_json(writer, 429, error, {"Retry-After": fault.split(":", 2)[2]})
            await writer.drain()
            return True
        return await super()._serve(fault, body, reader, writer)

    @staticmethod
    def _write_json(writer: asyncio.StreamWriter, status: int, obj: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(obj).encode()
        head = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **headers}
        writer.write(_head(status, head) + payload)


def stream_text(label: str) -> str:
    return f"{label}."


# =================================================================================================
# The gateway and its upstreams in this loop
# =================================================================================================


def gateway_config(
    primary: str, backup: str, dead: str, timeouts: dict[str, float] | None = None
) -> dict[str, Any]:
    def provider(url: str, **extra: Any) -> dict[str, Any]:
        return {"dialect": "openai", "base_url": f"{url}/v1", "timeouts": timeouts or TIMEOUTS, **extra}

    def target(name: str, **extra: Any) -> dict[str, Any]:
        return {"provider": name, "model": f"{name}-model", **extra}

    return {
        "log": {"level": "info", "format": "json"},
        "upstream": CAPS,
        "providers": {
            "chaos": provider(primary),
            "dead": provider(dead),  # nothing listens there: connection refused
            "backup": provider(backup),
            "chaos-retry": provider(primary, retry=RETRY),
            "flaky": provider(primary, cooldown=FLAKY_COOLDOWN),
            "lead": provider(primary, cooldown={"failures": 100}),
            "rested": provider(backup, cooldown={"failures": 1, "window": 60, "duration": 30}),
        },
        "models": {
            "solo": target("chaos"),
            "solo-fb": [target("chaos"), target("backup")],
            "dead": target("dead"),
            "dead-fb": [target("dead"), target("backup")],
            "retrying": target("chaos-retry"),
            "retrying-fb": [target("chaos-retry"), target("backup")],
            "flaky-fb": [target("flaky"), target("backup")],
            "lead-rested": [target("lead"), target("rested")],
            "weighted": {
                "strategy": "loadbalance",
                "targets": [target("chaos", weight=3), target("backup", weight=1)],
            },
            # a long idle timeout: only a client disconnect can end a held stream quickly
            "held": {"targets": [target("chaos")], "timeouts": {"idle": 30, "total": 60}},
        },
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    url: str
    primary: TrackedChaos
    backup: TrackedChaos
    clock: FakeClock
    baseline: set[asyncio.Task[Any]]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def upstreams(self) -> tuple[TrackedChaos, TrackedChaos]:
        return (self.primary, self.backup)

    def client(self, **options: Any) -> openai.AsyncOpenAI:
        sdk = openai.AsyncOpenAI(
            base_url=f"{self.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=15.0, **options
        )
        self.closers.append(sdk.close)
        return sdk

    def http(self, limit: int = 100) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            base_url=self.url,
            timeout=aiohttp.ClientTimeout(total=15.0),
            connector=aiohttp.TCPConnector(limit=limit),
        )
        self.closers.append(session.close)
        return session

    async def close_clients(self) -> None:
        closers, self.closers = self.closers, []
        for close in closers:
            await close()

    def foreign_tasks(self) -> set[asyncio.Task[Any]]:
        """Tasks that are neither the baseline's, nor this one, nor the upstreams' own handlers."""
        own = set().union(*(u.connection_tasks for u in self.upstreams))
        current = asyncio.current_task()
        ignored = self.baseline | own | {current}
        return {t for t in asyncio.all_tasks() if t not in ignored}

    async def settle(self, *, max_connections: int | None = 1) -> None:
        """Clients closed; then no upstream connection left mid-exchange, at most `max_connections`
        pooled per upstream, and no task left running."""
        await self.close_clients()
        for upstream in self.upstreams:
            await upstream.wait_parked()
            if max_connections is not None:
                assert upstream.open_connections <= max_connections, (
                    f"{upstream.label}: {upstream.open_connections} connections open for sequential "
                    "requests: one was checked out and never released"
                )
        await assert_tasks_finish(self.foreign_tasks())


async def assert_tasks_finish(tasks: set[asyncio.Task[Any]], within: float = SETTLE_TIMEOUT) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=within)
    assert not pending, f"{len(pending)} task(s) left running: {sorted(map(repr, pending))[:5]}"


@asynccontextmanager
async def running_rig(*, timeouts: dict[str, float] | None = None) -> AsyncIterator[Rig]:
    """The gateway app, served like production, with a chaos primary and a healthy fallback
    (`timeouts`: the providers', TIMEOUTS by default)."""
    baseline = set(asyncio.all_tasks())
    primary, backup = TrackedChaos("primary"), TrackedChaos("backup")
    await primary.start()
    await backup.start()
    dead = f"http://127.0.0.1:{closed_port()}"
    text = json.dumps(gateway_config(primary.url, backup.url, dead, timeouts))
    holder = RegistryHolder("faults.yaml", build_registry(config_from_text(text, "faults.yaml", {})))
    clock = FakeClock()
    app = create_app(holder, cooldowns=Cooldowns(clock=clock), rng=random.Random(SEED))
    runner = gateway_runner(app, holder.current.config.limits, shutdown_timeout=2.0)
    await runner.setup()
    rig: Rig | None = None
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        rig = Rig(f"http://127.0.0.1:{runner.addresses[0][1]}", primary, backup, clock, baseline)
        yield rig
    finally:
        if rig is not None:
            await rig.close_clients()
        await runner.cleanup()  # closes the gateway's upstream pool
        try:
            for upstream in (primary, backup):
                await upstream.wait_idle(SETTLE_TIMEOUT)
        finally:
            await primary.close()
            await backup.close()
    current = asyncio.current_task()
    await assert_tasks_finish({t for t in asyncio.all_tasks() if t not in baseline and t is not current})


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_rig() as running:
        yield running


def access_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "request"]


def attempts_of(event: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in event["attempts"]]


async def collect_text(stream: openai.AsyncStream[Any], into: list[str] | None = None) -> list[str]:
    """The content pieces of a stream (appended to `into` as they come, if given)."""
    texts = [] if into is None else into
    async for part in stream:
        if part.choices and part.choices[0].delta.content:
            texts.append(part.choices[0].delta.content)
    return texts


# =================================================================================================
# The fault table
# =================================================================================================

Attempt = tuple[str, str]  # (provider, outcome) as the access log records it
Attempts = tuple[Attempt, ...]


@dataclass(frozen=True)
class Served:
    """The client gets a normal answer from `by` ("primary" or "backup")."""

    by: str
    attempts: Attempts
    text: str | None = None  # the content, when it is not the upstream's label


@dataclass(frozen=True)
class ErrorReply:
    """A clean OpenAI error before anything was streamed."""

    status: int
    error: type[openai.APIStatusError]
    code: str | None
    attempts: Attempts
    retry_after: str | None = None


@dataclass(frozen=True)
class ErrorEvent:
    """The stream had started: the content sent so far, then an OpenAI error event, then [DONE]."""

    code: str
    before: tuple[str, ...]
    attempts: Attempts


Outcome = Served | ErrorReply | ErrorEvent


@dataclass(frozen=True)
class Case:
    fault: str  # a ChaosUpstream fault, or "refused" (the target is a closed port)
    stream: bool
    fallback: bool
    outcome: Outcome
    trickle_gap: float | None = None
    bug: str | None = None

    @property
    def model(self) -> str:
        base = "dead" if self.fault == "refused" else "solo"
        return f"{base}-fb" if self.fallback else base

    @property
    def takes(self) -> tuple[float, float]:
        """How long the client waits for the outcome (s): at least what the deciding timeout (or the
        trickle) takes, at most SLACK more."""
        waited = WAITED.get(self.fault, 0.0)
        if self.fault == "trickle":
            gap = TRICKLE_GAP if self.trickle_gap is None else self.trickle_gap
            waited = TIMEOUTS["idle"] if gap > TIMEOUTS["idle"] else 5 * gap
        return (waited, waited + SLACK)

    @property
    def id(self) -> str:
        name = self.fault if self.trickle_gap is None else f"{self.fault}({self.trickle_gap}s)"
        return f"{name}-{'stream' if self.stream else 'json'}-{'fallback' if self.fallback else 'alone'}"


def error(status: int, exc: type[openai.APIStatusError], code: str | None, failed: Attempt) -> ErrorReply:
    return ErrorReply(status, exc, code, (failed,))


def backup_after(failed: Attempt) -> Served:
    return Served("backup", (failed, ("backup", "ok")))


def event(code: str, *before: str) -> ErrorEvent:
    return ErrorEvent(code, before, (("chaos", "ok"),))


# what a fault costs before the gateway can tell (other faults show at once)
WAITED = {
    "stall_headers": TIMEOUTS["first_byte"],
    "stall_after_headers": TIMEOUTS["idle"],
    "stall_mid_stream": TIMEOUTS["idle"],
}

REFUSED = ("dead", "connect")
BROKEN = ("chaos", "broken")
TIMEOUT = ("chaos", "timeout")
INVALID = ("chaos", "invalid_reply")
ISE = openai.InternalServerError
CUT = "upstream_stream_truncated"
TOO_LARGE = "upstream_response_too_large"
HEADERS_TOO_LARGE = "upstream_headers_too_large"
TRICKLED = Served("primary", (("chaos", "ok"),), text="t0 t1 t2 t3 t4 ")


def status(code: int) -> Attempt:
    return ("chaos", f"status:{code}")


CASES = [
    # --- not streamed (truncate_sse and trickle are stream faults: they have no rows here) ----------
    Case("refused", False, False, error(502, ISE, "upstream_unreachable", REFUSED)),
    Case("refused", False, True, backup_after(REFUSED)),
    Case("reset_mid_body", False, False, error(502, ISE, "upstream_connection_error", BROKEN)),
    Case("reset_mid_body", False, True, backup_after(BROKEN)),
    Case("stall_headers", False, False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    Case("stall_headers", False, True, backup_after(TIMEOUT)),
    Case("stall_mid_stream", False, False, error(504, ISE, "upstream_timeout", TIMEOUT)),  # mid-body
    Case("stall_mid_stream", False, True, backup_after(TIMEOUT)),
    Case("malformed_json", False, False, error(502, ISE, "upstream_invalid_response", INVALID)),
    Case("malformed_json", False, True, backup_after(INVALID)),
    Case("status:429", False, False, ErrorReply(429, openai.RateLimitError, None, (status(429),), "0")),
    Case("status:429", False, True, backup_after(status(429))),
    Case("status:500", False, False, error(500, ISE, None, status(500))),
    Case("status:500", False, True, backup_after(status(500))),
    Case("status:503", False, False, error(503, ISE, None, status(503))),
    Case("status:503", False, True, backup_after(status(503))),
    Case("status:529", False, False, error(529, ISE, None, status(529))),
    Case("status:529", False, True, backup_after(status(529))),
    Case("stall_after_headers", False, False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    Case("stall_after_headers", False, True, backup_after(TIMEOUT)),
    # --- not streamed: past the upstream client's caps ---------------------------------------------
    Case("endless_body", False, False, error(502, ISE, TOO_LARGE, BROKEN)),
    Case("endless_body", False, True, backup_after(BROKEN)),
    Case("gzip_bomb", False, False, error(502, ISE, TOO_LARGE, BROKEN)),
    Case("gzip_bomb", False, True, backup_after(BROKEN)),
    Case("huge_headers", False, False, error(502, ISE, HEADERS_TOO_LARGE, BROKEN)),
    Case("huge_headers", False, True, backup_after(BROKEN)),
    # --- streamed: failures before the first byte can still fall back ------------------------------
    Case("refused", True, False, error(502, ISE, "upstream_unreachable", REFUSED)),
    Case("refused", True, True, backup_after(REFUSED)),
    Case("stall_headers", True, False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    Case("stall_headers", True, True, backup_after(TIMEOUT)),
    Case("status:429", True, False, ErrorReply(429, openai.RateLimitError, None, (status(429),), "0")),
    Case("status:429", True, True, backup_after(status(429))),
    Case("status:500", True, False, error(500, ISE, None, status(500))),
    Case("status:500", True, True, backup_after(status(500))),
    Case("status:503", True, False, error(503, ISE, None, status(503))),
    Case("status:503", True, True, backup_after(status(503))),
    Case("status:529", True, False, error(529, ISE, None, status(529))),
    Case("status:529", True, True, backup_after(status(529))),
    Case("stall_after_headers", True, False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    Case("stall_after_headers", True, True, backup_after(TIMEOUT)),
    Case("huge_headers", True, False, error(502, ISE, HEADERS_TOO_LARGE, BROKEN)),
    Case("huge_headers", True, True, backup_after(BROKEN)),
    # --- streamed: after the first byte, an error event then [DONE]; no fallback any more -----------
    Case("stall_mid_stream", True, False, event("upstream_timeout", "first")),
    Case("stall_mid_stream", True, True, event("upstream_timeout", "first")),
    Case("trickle", True, False, event("upstream_timeout", "t0 "), trickle_gap=0.8),  # gap > idle 0.5 s
    Case("trickle", True, True, event("upstream_timeout", "t0 "), trickle_gap=0.8),
    Case("truncate_sse", True, False, event(CUT, "one ", "two ")),
    Case("truncate_sse", True, True, event(CUT, "one ", "two ")),
    # --- streamed: a 200 that is not a stream (JSON, here broken) is refused before the first byte --
    Case("malformed_json", True, False, error(502, ISE, "upstream_invalid_response", BROKEN)),
    Case("malformed_json", True, True, backup_after(BROKEN)),
    Case("reset_mid_body", True, False, error(502, ISE, "upstream_invalid_response", BROKEN)),
    Case("reset_mid_body", True, True, backup_after(BROKEN)),
    # --- streamed: slow but alive (gaps under the idle timeout) is not a failure --------------------
    Case("trickle", True, False, TRICKLED),
    Case("trickle", True, True, TRICKLED),
]


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


async def _expect_served(client: openai.AsyncOpenAI, case: Case, outcome: Served) -> None:
    upstream_label = outcome.by
    started = time.monotonic()
    if case.stream:
        stream = await client.chat.completions.create(model=case.model, messages=USER, stream=True)
        text = "".join(await collect_text(stream))
        assert_took(started, case.takes)
        assert text == (outcome.text or stream_text(upstream_label))
    else:
        completion = await client.chat.completions.create(model=case.model, messages=USER)
        assert_took(started, case.takes)
        assert completion.choices[0].message.content == (outcome.text or upstream_label)
        assert completion.choices[0].finish_reason == "stop"


async def _expect_error_reply(client: openai.AsyncOpenAI, case: Case, outcome: ErrorReply) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=case.model, messages=USER, stream=case.stream)
    assert_took(started, case.takes)
    exc = caught.value
    assert type(exc) is outcome.error, repr(exc)
    assert exc.status_code == outcome.status
    assert exc.code == outcome.code
    assert exc.response.headers["content-type"].startswith("application/json")
    assert_error_body(exc.response.json(), code=outcome.code, type_="server_error")
    assert exc.response.headers.get("retry-after") == outcome.retry_after


async def _expect_error_event(rig: Rig, client: openai.AsyncOpenAI, case: Case, outcome: ErrorEvent) -> None:
    # the SDK: the content sent so far, then APIError (exactly that class) with the code
    started = time.monotonic()
    stream = await client.chat.completions.create(model=case.model, messages=USER, stream=True)
    texts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        await collect_text(stream, into=texts)
    assert_took(started, case.takes)
    assert type(caught.value) is openai.APIError, repr(caught.value)
    assert caught.value.code == outcome.code
    assert texts == list(outcome.before)

    # the same fault again, read as raw SSE: complete chunks, one error event, [DONE], nothing else
    rig.primary.queue(case.fault)
    body = {"model": case.model, "messages": USER, "stream": True}
    started = time.monotonic()
    async with rig.http() as http, http.post("/v1/chat/completions", json=body) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/event-stream"
        raw = await reply.read()
    assert_took(started, case.takes)
    events = assert_valid_stream(raw, allow_error=True)
    *chunks, last = events
    assert last["error"]["code"] == outcome.code
    assert last["error"]["type"] == "server_error"
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == list(outcome.before)
    lines = raw.decode().split("\n")
    assert lines[-5:] == [f"data: {json.dumps(last, separators=(',', ':'))}", "", "data: [DONE]", "", ""]


def assert_took(started: float, bounds: tuple[float, float]) -> None:
    elapsed = time.monotonic() - started
    low, high = bounds
    assert low <= elapsed <= high, f"took {elapsed:.2f} s, expected {low:.2f} .. {high:.2f} s"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
async def test_fault(rig: Rig, case: Case) -> None:
    if case.trickle_gap is not None:
        rig.primary.trickle_gap = case.trickle_gap
    if case.fault != "refused":
        rig.primary.queue(case.fault)
    client = rig.client()
    outcome = case.outcome
    with structlog.testing.capture_logs() as logs:
        if isinstance(outcome, Served):  # each asserts how long the client waited (case.takes)
            await _expect_served(client, case, outcome)
        elif isinstance(outcome, ErrorReply):
            await _expect_error_reply(client, case, outcome)
        else:
            await _expect_error_event(rig, client, case, outcome)
        assert not rig.primary.faults, "every queued fault was used"
        # the gateway is fine afterwards: a healthy request to the primary (on a pooled or new connection)
        completion = await client.chat.completions.create(model="solo", messages=USER)
        assert completion.choices[0].message.content == "primary"
        await rig.settle()

    access = access_events(logs)
    case_events, follow_up = access[:-1], access[-1]
    assert case_events and all(attempts_of(e) == list(outcome.attempts) for e in case_events)
    assert attempts_of(follow_up) == [("chaos", "ok")]
    served_by_backup = isinstance(outcome, Served) and outcome.by == "backup"
    assert len(rig.backup.requests) == (1 if served_by_backup else 0)


STALLS = [
    # (fault, stream, what the client gets): all decided by `idle` (0.3 s), well before `first_byte` (2 s)
    ("stall_after_headers", False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    ("stall_after_headers", True, error(504, ISE, "upstream_timeout", TIMEOUT)),
    ("stall_mid_stream", False, error(504, ISE, "upstream_timeout", TIMEOUT)),
    ("stall_mid_stream", True, event("upstream_timeout", "first")),
]


@pytest.mark.parametrize(
    ("fault", "stream", "outcome"), STALLS, ids=[f"{f}-{'stream' if s else 'json'}" for f, s, _ in STALLS]
)
async def test_a_stall_after_the_headers_ends_after_idle_not_first_byte(
    fault: str, stream: bool, outcome: ErrorReply | ErrorEvent
) -> None:
    """The idle timeout counts from the headers: with idle (0.3 s) < first_byte (2 s), an upstream that
    stalls once its headers are out is given up after idle."""
    async with running_rig(timeouts=SHORT_IDLE) as rig:
        rig.primary.queue(fault)
        client = rig.client()
        idle = SHORT_IDLE["idle"]
        case = Case(fault, stream, False, outcome)
        started = time.monotonic()
        if isinstance(outcome, ErrorReply):
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(model=case.model, messages=USER, stream=stream)
            assert_took(started, (idle, idle + SLACK))
            assert (caught.value.status_code, caught.value.code) == (outcome.status, outcome.code)
        else:
            stream_reply = await client.chat.completions.create(model=case.model, messages=USER, stream=True)
            texts: list[str] = []
            with pytest.raises(openai.APIError) as caught_event:
                await collect_text(stream_reply, into=texts)
            assert_took(started, (idle, idle + SLACK))
            assert (caught_event.value.code, texts) == (outcome.code, list(outcome.before))
        await rig.settle()


async def test_an_error_body_past_its_cap_is_cut_and_its_connection_closed(rig: Rig) -> None:
    """A 500 whose body is larger than max_error_body_bytes: the client gets the 500 at once, with a
    message from the body's first bytes (cut, it is no JSON envelope any more), and the connection, whose
    rest was not read, is closed rather than pooled."""
    rig.primary.queue("huge_error")
    client = rig.client()
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="solo", messages=USER)
    assert_took(started, (0.0, SLACK))
    assert caught.value.status_code == 500
    error = assert_error_body(caught.value.response.json(), type_="server_error")
    assert len(error["message"]) < CAPS["max_error_body_bytes"]
    completion = await client.chat.completions.create(model="solo", messages=USER)
    assert completion.choices[0].message.content == "primary"
    await rig.settle()
    assert rig.primary.accepted == 2  # the follow-up needed a new connection


# =================================================================================================
# Retries
# =================================================================================================

RETRIED = [
    ("status:429", False, "status:429"),
    ("status:500", False, "status:500"),
    ("status:503", False, "status:503"),
    ("status:529", False, "status:529"),
    ("reset_mid_body", False, "broken"),
    ("stall_headers", False, "timeout"),
    ("malformed_json", False, "invalid_reply"),
    ("status:503", True, "status:503"),
    ("stall_headers", True, "timeout"),
]


@pytest.mark.parametrize(
    ("fault", "stream", "outcome"), RETRIED, ids=[f"{f}-{'stream' if s else 'json'}" for f, s, _ in RETRIED]
)
async def test_retry_then_success(rig: Rig, fault: str, stream: bool, outcome: str) -> None:
    rig.primary.queue(fault, "ok")
    client = rig.client()
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        if stream:
            text = "".join(
                await collect_text(
                    await client.chat.completions.create(model="retrying", messages=USER, stream=True)
                )
            )
            assert text == stream_text("primary")
        else:
            completion = await client.chat.completions.create(model="retrying", messages=USER)
            assert completion.choices[0].message.content == "primary"
        waited = WAITED.get(fault, 0.0)  # and a backoff of at most max_backoff (jittered; 0 after a 429)
        assert_took(started, (waited, waited + RETRY["max_backoff"] + SLACK))
        await rig.settle()
    assert len(rig.primary.requests) == 2
    [access] = access_events(logs)
    assert attempts_of(access) == [("chaos-retry", outcome), ("chaos-retry", "ok")]


@pytest.mark.parametrize("fallback", [False, True], ids=["alone", "fallback"])
async def test_retries_exhausted(rig: Rig, fallback: bool) -> None:
    rig.primary.queue("status:503", "status:503", "status:503")
    client = rig.client()
    with structlog.testing.capture_logs() as logs:
        if fallback:
            completion = await client.chat.completions.create(model="retrying-fb", messages=USER)
            assert completion.choices[0].message.content == "backup"
        else:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model="retrying", messages=USER)
            assert caught.value.status_code == 503
            assert_error_body(caught.value.response.json())
        await rig.settle()
    assert len(rig.primary.requests) == RETRY["attempts"]
    [access] = access_events(logs)
    expected = [("chaos-retry", "status:503")] * 3 + ([("backup", "ok")] if fallback else [])
    assert attempts_of(access) == expected


async def test_retry_after_is_honoured(rig: Rig) -> None:
    """429 with Retry-After: 0.3 (under max_retry_after 1 s), then ok: success after waiting at least
    0.3 s (the jittered backoff alone would be at most 0.02 s)."""
    rig.primary.queue("status:429:0.3", "ok")
    client = rig.client()
    started = time.monotonic()
    completion = await client.chat.completions.create(model="retrying", messages=USER)
    waited = time.monotonic() - started
    assert completion.choices[0].message.content == "primary"
    assert len(rig.primary.requests) == 2
    assert waited >= 0.3
    await rig.settle()


@pytest.mark.parametrize("fallback", [False, True], ids=["alone", "fallback"])
async def test_retry_after_beyond_the_cap_is_not_waited_for(rig: Rig, fallback: bool) -> None:
    """Retry-After: 3600 > max_retry_after (1 s): no retry and no wait; the fallback answers at once, or
    (alone) the 429 goes to the client with the upstream's Retry-After."""
    rig.primary.queue("status:429:3600")
    client = rig.client()
    started = time.monotonic()
    if fallback:
        completion = await client.chat.completions.create(model="retrying-fb", messages=USER)
        assert completion.choices[0].message.content == "backup"
    else:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="retrying", messages=USER)
        assert caught.value.status_code == 429
        assert caught.value.response.headers["retry-after"] == "3600"
        assert_error_body(caught.value.response.json())
    assert time.monotonic() - started < RETRY["max_retry_after"]
    assert len(rig.primary.requests) == 1
    await rig.settle()


# =================================================================================================
# Cooldowns (fake clock)
# =================================================================================================


async def test_cooldown_skips_a_failing_target_then_probes_it(rig: Rig) -> None:
    failures, duration = FLAKY_COOLDOWN["failures"], FLAKY_COOLDOWN["duration"]
    rig.primary.queue(*["status:503"] * failures)
    client = rig.client()

    async def ask() -> str | None:
        completion = await client.chat.completions.create(model="flaky-fb", messages=USER)
        return completion.choices[0].message.content

    with structlog.testing.capture_logs() as logs:
        for _ in range(failures):  # each fails on the primary and is served by the fallback
            assert await ask() == "backup"
        assert await ask() == "backup"  # resting: the fallback first, the primary not asked
        rig.clock.advance(duration - 1)
        assert await ask() == "backup"  # still resting
        rig.clock.advance(2)
        assert await ask() == "primary"  # the rest is over: one probe, which succeeds
        assert await ask() == "primary"  # and clears the cooldown
        await rig.settle()

    assert len(rig.primary.requests) == failures + 2
    access = access_events(logs)
    assert [attempts_of(e) for e in access] == [
        [("flaky", "status:503"), ("backup", "ok")],
        [("flaky", "status:503"), ("backup", "ok")],
        [("flaky", "cooling_down"), ("backup", "ok")],
        [("flaky", "cooling_down"), ("backup", "ok")],
        [("flaky", "ok")],
        [("flaky", "ok")],
    ]
    assert [e["provider"] for e in access] == ["backup"] * 4 + ["flaky"] * 2
    assert sum(e["event"] == "target_cooling_down" for e in logs) == 1


async def test_cooldown_failed_probe_rests_the_target_again(rig: Rig) -> None:
    rig.primary.queue(*["status:503"] * (FLAKY_COOLDOWN["failures"] + 1))
    client = rig.client()
    with structlog.testing.capture_logs() as logs:
        for _ in range(FLAKY_COOLDOWN["failures"]):
            await client.chat.completions.create(model="flaky-fb", messages=USER)
        rig.clock.advance(FLAKY_COOLDOWN["duration"] + 1)
        probe = await client.chat.completions.create(model="flaky-fb", messages=USER)  # the probe fails
        after = await client.chat.completions.create(model="flaky-fb", messages=USER)
        await rig.settle()
    assert probe.choices[0].message.content == after.choices[0].message.content == "backup"
    access = access_events(logs)
    assert attempts_of(access[-2]) == [("flaky", "status:503"), ("backup", "ok")]
    assert attempts_of(access[-1]) == [("flaky", "cooling_down"), ("backup", "ok")]
    assert len(rig.primary.requests) == FLAKY_COOLDOWN["failures"] + 1


async def test_cooldown_fallback_whose_rest_is_over_is_tried_when_needed(rig: Rig) -> None:
    """Route [lead, rested]; `rested` (the backup upstream) rests after one failure for 30 s. Once the
    30 s are over it must be available to the next request that needs it, even if a request in
    between was served by `lead` alone."""
    client = rig.client()
    rig.primary.queue("status:500")
    rig.backup.queue("status:500")
    with pytest.raises(openai.InternalServerError):  # both fail: `rested` starts resting
        await client.chat.completions.create(model="lead-rested", messages=USER)
    rig.clock.advance(31)  # its rest is over
    first = await client.chat.completions.create(model="lead-rested", messages=USER)
    assert first.choices[0].message.content == "primary"  # `lead` answers; `rested` is not needed
    rig.primary.queue("status:500")  # now `lead` fails: `rested` must take over
    with structlog.testing.capture_logs() as logs:
        try:
            second = await client.chat.completions.create(model="lead-rested", messages=USER)
        except openai.InternalServerError as exc:
            attempts = attempts_of(access_events(logs)[0])
            pytest.fail(f"{exc.status_code} to the client; attempts: {attempts}")
    assert second.choices[0].message.content == "backup"
    await rig.settle()


# =================================================================================================
# Load balancing (seeded RNG)
# =================================================================================================


async def test_weighted_loadbalance_spreads_requests_by_weight(rig: Rig) -> None:
    total = 400
    client = rig.client()
    served: dict[str, int] = {"primary": 0, "backup": 0}
    for _ in range(total):
        completion = await client.chat.completions.create(model="weighted", messages=USER)
        label = completion.choices[0].message.content
        assert label in served
        served[label] += 1
    await rig.settle()
    assert served["primary"] == len(rig.primary.requests)
    assert served["backup"] == len(rig.backup.requests)
    share = served["primary"] / total  # weights 3:1 -> 0.75
    assert 0.68 <= share <= 0.82, served


# =================================================================================================
# Client disconnects
# =================================================================================================


async def _abandon_a_held_stream(rig: Rig) -> dict[str, Any]:
    """Open a stream on `held` (30 s idle timeout), read its first chunk, go away; the upstream
    connection must close within 2 s — only the client's disconnect can explain that. Returns the
    request's access event."""
    rig.primary.queue("stall_mid_stream")  # one chunk, then nothing until the gateway hangs up
    client = rig.client()
    with structlog.testing.capture_logs() as logs:
        stream = await client.chat.completions.create(model="held", messages=USER, stream=True)
        first = await stream.__anext__()
        assert first.choices[0].delta.content == "first"
        assert (rig.primary.open_connections, rig.primary.parked) == (1, 0)  # the upstream is mid-reply
        await stream.close()  # the client goes away mid-stream
        await rig.primary.wait_idle(within=2.0)
        await rig.settle()
    [access] = access_events(logs)
    return access


async def test_client_disconnect_mid_stream_closes_the_upstream_at_once(rig: Rig) -> None:
    access = await _abandon_a_held_stream(rig)
    assert (access["status"], access["stream"], access["upstream_status"]) == (499, True, 200)
    assert len(rig.primary.requests) == 1


async def test_access_log_of_an_abandoned_stream_names_its_attempt(rig: Rig) -> None:
    access = await _abandon_a_held_stream(rig)
    assert attempts_of(access) == [("chaos", "abandoned")]
    assert (access.get("provider"), access.get("upstream_model")) == ("chaos", "chaos-model")
