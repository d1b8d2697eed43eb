"""A bounded soak: thousands of mixed requests through the gateway on loopback, with bounded concurrency.

The mix (seeded): plain chats and streams, upstream faults (error statuses, resets, malformed bodies,
stalls, cut and trickling streams), fallbacks, refused connections and clients that go away
mid-stream. Every response is checked against what its own request should get, and at the end:
no unhandled exception (no `unhandled_error` structlog event, no aiohttp "Error handling request",
no ERROR from asyncio or aiohttp), one access event per request, no upstream connection left
mid-exchange while the gateway runs and none at all once it is shut down, and no task left running.
The process RSS before and after the load is printed (`-s`) and written to bench-results/soak.txt.

Faults are chosen per request — the request body names them (`chaos_fault`, see `TrackedChaos` in
test_faults.py), the openai dialect passes the field through — rather than taken from the chaos
upstream's shared queue: with concurrent requests the queue's order is not the requests' order, and
this way every response can be checked exactly.

The run is bounded by SOAK_REQUESTS (default 3000) and a wall-clock cap (SOAK_SECONDS, default 45 s):
no new request starts after the cap.

(Not marked `soak`: pyproject.toml does not register that marker, and an unregistered marker is a
collection error under `filterwarnings = error`.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from tests.integration.test_faults import Rig, running_rig, stream_text
from tests.support.openai_spec import CHAT, ERROR, assert_valid, sse_data_lines

REQUESTS = int(os.environ.get("SOAK_REQUESTS", "3000"))
WALL_CLOCK = float(os.environ.get("SOAK_SECONDS", "45"))
CONCURRENCY = 32
SEED = 7
VALIDATE_EVERY = 25  # one body in this many is also validated against the spec (after the load)
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "soak.txt"
USER = [{"role": "user", "content": "Say hello"}]


@dataclass(frozen=True)
class Plan:
    kind: str
    model: str
    stream: bool = False
    fault: str | None = None  # the primary's fault for this request


@dataclass(frozen=True)
class Expect:
    """What the client must get: 200 with `text` (and no error event unless `code`), or `status` with
    an error body whose code is `code`."""

    status: int = 200
    text: str = ""
    code: str | None = None


# a non-streamed request whose primary fails, no fallback: (status, error code)
ERRORS: dict[str, tuple[int, str | None]] = {
    "status:429": (429, None),
    "status:500": (500, None),
    "status:503": (503, None),
    "status:529": (529, None),
    "reset_mid_body": (502, "upstream_connection_error"),
    "malformed_json": (502, "upstream_invalid_response"),
    "stall_headers": (504, "upstream_timeout"),
    "stall_mid_stream": (504, "upstream_timeout"),
}
FAST_FAULTS = [f for f in ERRORS if not f.startswith("stall")]
STATUS_FAULTS = [f for f in ERRORS if f.startswith("status:")]  # fail before a stream's first byte
STREAM_FAULTS = ["truncate_sse", "trickle", "status:503"]
# soak timeouts: stalls still resolve, with headroom for a busy loop (everything shares one thread)
SOAK_TIMEOUTS = {"connect": 1, "first_byte": 1.5, "idle": 1.5, "total": 10}


def plans(rng: random.Random, count: int) -> list[Plan]:
    """The request mix, in percent: chat 30, stream 25, fault 17, fallback 10, stream fault 8,
    disconnect 6.5, refused 2, stall 1.5."""

    def fallback() -> Plan:
        stream = rng.random() < 0.5  # a stream can fall back only from failures before its first byte
        return Plan("fallback", "solo-fb", stream, rng.choice(STATUS_FAULTS if stream else FAST_FAULTS))

    def stall() -> Plan:
        return Plan("stall", "solo", rng.random() < 0.5, rng.choice(["stall_headers", "stall_mid_stream"]))

    makers = [
        (30.0, lambda: Plan("chat", "solo")),
        (25.0, lambda: Plan("stream", "solo", stream=True)),
        (17.0, lambda: Plan("fault", "solo", fault=rng.choice(FAST_FAULTS))),
        (10.0, fallback),
        (8.0, lambda: Plan("stream-fault", "solo", stream=True, fault=rng.choice(STREAM_FAULTS))),
        (6.5, lambda: Plan("disconnect", "held", stream=True, fault="stall_mid_stream")),
        (2.0, lambda: Plan("refused", rng.choice(["dead", "dead-fb"]), stream=rng.random() < 0.5)),
        (1.5, stall),
    ]
    weights = [w for w, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(count)]


def expect(plan: Plan) -> Expect:
    if plan.model.endswith("-fb"):
        return Expect(text=stream_text("backup") if plan.stream else "backup")
    if plan.model == "dead":
        return Expect(502, code="upstream_unreachable")
    if plan.fault is None:
        return Expect(text=stream_text("primary") if plan.stream else "primary")
    if plan.stream and plan.fault == "trickle":
        return Expect(text="t0 t1 t2 t3 t4 ")
    if plan.stream and plan.fault == "stall_mid_stream":
        return Expect(text="first", code="upstream_timeout")  # started, then an error event
    if plan.stream and plan.fault == "truncate_sse":
        return Expect(text="one two ", code="upstream_stream_truncated")
    status, code = ERRORS[plan.fault]
    return Expect(status, code=code)


def body_of(plan: Plan) -> dict[str, Any]:
    body: dict[str, Any] = {"model": plan.model, "messages": USER, "stream": plan.stream}
    if plan.fault is not None:
        body["chaos_fault"] = {"primary": plan.fault}
    return body


def stream_events(raw: bytes) -> tuple[str, dict[str, Any] | None]:
    """(the content, the error event if any) of a complete client stream; asserts it ends with [DONE]
    and that nothing but [DONE] follows an error event."""
    assert raw.endswith(b"data: [DONE]\n\n"), raw[-200:]
    payloads = sse_data_lines(raw)
    assert payloads.count("[DONE]") == 1 and payloads[-1] == "[DONE]"
    text, error = "", None
    for payload in payloads[:-1]:
        assert error is None, "an error event must be the last event before [DONE]"
        event = json.loads(payload)
        if "error" in event:
            error = event["error"]
        else:
            text += event["choices"][0]["delta"].get("content") or ""
    return text, error


Samples = list[tuple[str, Any]]  # (schema, body) to validate against the spec after the load


async def run_one(http: aiohttp.ClientSession, plan: Plan, samples: Samples | None) -> str:
    """Send one request and check what came back; returns the outcome's name."""
    body = body_of(plan)
    if plan.kind == "disconnect":
        async with http.post("/v1/chat/completions", json=body) as reply:
            assert reply.status == 200
            line = await reply.content.readline()
            assert b'"first"' in line, line
            reply.close()  # the client goes away mid-stream (its connection closes)
        return "disconnected"
    async with http.post("/v1/chat/completions", json=body) as reply:
        raw = await reply.read()
        status, content_type = reply.status, reply.headers.get("Content-Type", "")
    want = expect(plan)
    if want.status != 200:
        assert (status, content_type) == (want.status, "application/json"), (plan, status, raw[:300])
        error_body = json.loads(raw)
        assert error_body["error"]["code"] == want.code, (plan, error_body)
        if samples is not None:
            samples.append((ERROR, error_body))
        return f"{status} {want.code or 'upstream error'}"
    assert status == 200, (plan, status, raw[:300])
    if not plan.stream:
        completion = json.loads(raw)
        assert completion["choices"][0]["message"]["content"] == want.text, (plan, completion)
        if samples is not None:
            samples.append((CHAT, completion))
        return f"200 {want.text}"
    assert content_type == "text/event-stream", (plan, content_type)
    if plan.fault == "truncate_sse":  # the pass-through bug (see test_faults): the error event is glued on
        assert raw.endswith(b"data: [DONE]\n\n") and b'"code":"upstream_stream_truncated"' in raw, raw
        return "200 stream, then truncated"
    text, error = stream_events(raw)
    assert text == want.text and (error and error["code"]) == want.code, (plan, raw[-300:])
    return f"200 stream, then {want.code}" if want.code else f"200 stream {text}"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def load(rig: Rig, todo: list[Plan], samples: Samples) -> tuple[Counter[str], list[str], int]:
    """Run the plans with CONCURRENCY workers until done or the wall-clock cap; (outcomes, failures, sent)."""
    deadline = time.monotonic() + WALL_CLOCK
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    queue = iter(enumerate(todo))
    sent = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal sent
        for index, plan in queue:
            if time.monotonic() > deadline:
                return
            sent += 1
            try:
                outcomes[await run_one(http, plan, samples if index % VALIDATE_EVERY == 0 else None)] += 1
            except Exception as exc:  # collected: the test reports them all at the end
                failures.append(f"#{index} {plan}: {type(exc).__name__}: {exc!r}"[:500])

    http = rig.http(limit=CONCURRENCY)
    await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return outcomes, failures, sent


async def test_soak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    todo = plans(random.Random(SEED), REQUESTS)
    started = time.monotonic()
    samples: Samples = []
    async with running_rig(timeouts=SOAK_TIMEOUTS) as rig:
        rss_before = rss_kib()
        with structlog.testing.capture_logs() as logs:
            outcomes, failures, sent = await load(rig, todo, samples)
            elapsed = time.monotonic() - started
            await rig.settle(max_connections=CONCURRENCY)
        rss_after = rss_kib()
        upstreams = rig.upstreams
    # running_rig's exit shut the gateway down and checked that every task it started has finished
    open_after = {u.label: u.open_connections for u in upstreams}

    report = (
        f"soak: {sent} requests ({REQUESTS} planned), concurrency {CONCURRENCY}, {elapsed:.1f} s, "
        f"{sent / elapsed:.0f} req/s\n"
        f"RSS before {rss_before / 1024:.1f} MiB, after {rss_after / 1024:.1f} MiB "
        f"(+{(rss_after - rss_before) / 1024:.1f} MiB; includes {len(logs)} captured log events)\n"
        f"outcomes: {dict(sorted(outcomes.items()))}\n"
        f"upstream connections accepted: primary {upstreams[0].accepted}, backup {upstreams[1].accepted}; "
        f"open after shutdown: {open_after}\n"
    )
    print("\n" + report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")

    assert not failures, f"{len(failures)} requests failed, e.g.:\n" + "\n".join(failures[:10])
    assert sent == REQUESTS or elapsed >= WALL_CLOCK, "stopped early"
    assert sum(outcomes.values()) == sent
    assert not [e for e in logs if e["event"] == "unhandled_error"]
    assert sum(e["event"] == "request" for e in logs) == sent  # one access event per request
    assert sum(e["event"] == "request" and e["status"] == 499 for e in logs) == outcomes["disconnected"]
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR or "Error handling request" in r.message
    ]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors[:5]]
    assert open_after == {"primary": 0, "backup": 0}
    for schema, sample in samples:  # after the load: loading the spec would stall the loop
        assert_valid(schema, sample)
