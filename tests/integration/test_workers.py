"""`--workers N`: several processes on one port, reloaded and drained together, metrics aggregated."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.observability.metrics import FLUSH_INTERVAL_S
from gateway.workers import RESTART_PAUSE
from tests.observability.exposition import parse, value
from tests.support.gateway_process import GatewayProcess

pytestmark = pytest.mark.subprocess

MOCK_200 = {"model": "mock", "provider": "mock", "status": "200"}

ROUTES = """
providers: {mock: {dialect: mock, transport: mock}}
models:
  mock: [{provider: mock, model: m}]
"""


async def test_two_workers_share_the_port_reload_together_and_drain(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES)
    gateway = GatewayProcess(config, "--workers", "2").start()
    try:
        workers = gateway.wait_for_event("workers_started")
        assert len(workers["pids"]) == 2
        first_listening = gateway.wait_for_event("listening")
        gateway.wait_for(
            lambda e: e.get("event") == "listening" and e is not first_listening, what="worker 2"
        )
        chat = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as session:
            for _ in range(20):  # new connections each time: the kernel spreads them over the workers
                async with session.post(
                    f"{gateway.url}/v1/chat/completions", json=chat, headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
            # counters from every worker are added up, whichever worker answers the scrape; a worker
            # writes its figures to the shared files every FLUSH_INTERVAL_S, so the total may lag by that
            seen: list[float | None] = []
            deadline = time.monotonic() + 3 * FLUSH_INTERVAL_S + 2
            while not seen or (seen[-1] != 20 and time.monotonic() < deadline):
                async with session.get(f"{gateway.url}/metrics") as response:
                    samples = parse(await response.text())
                seen.append(value(samples, "gateway_requests_total", **MOCK_200))
                if seen[-1] != 20:
                    await asyncio.sleep(FLUSH_INTERVAL_S / 4)  # the next flush is a timer in the workers
        assert seen[-1] == 20, seen

        config.write_text(
            ROUTES.replace(
                "mock: [{provider: mock, model: m}]",
                "mock: [{provider: mock, model: m}]\n  also: [{provider: mock, model: m}]",
            )
        )
        after = gateway.mark()
        gateway._proc.send_signal(1) if gateway._proc else None  # SIGHUP to the parent
        first = gateway.wait_for_event("config_reloaded", after=after)
        gateway.wait_for(lambda e: e.get("event") == "config_reloaded" and e is not first, after=after)
    finally:
        code = gateway.stop()
    assert code == 0
    stopped = [e for e in gateway.events if e.get("event") == "stopped"]
    assert len(stopped) == 2
    assert any(e.get("event") == "workers_stopped" for e in gateway.events)


async def test_sigterm_during_a_restart_pause_stops_without_starting_a_worker(tmp_path: Path) -> None:
    """A worker dies; SIGTERM comes while the supervisor waits to restart it. The old supervisor slept
    on, started a worker nobody told to stop, and waited on it until it was killed."""
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES)
    gateway = GatewayProcess(config, "--workers", "2").start()
    assert gateway._proc is not None
    try:
        first = gateway.wait_for_event("workers_started")["pids"][0]
        os.kill(first, signal.SIGKILL)
        died = gateway.wait_for_event("worker_died")
        assert (died["pid"], died["restart_in_s"]) == (first, RESTART_PAUSE)
        second = gateway.wait_for_event("worker_restarted")["pid"]
        os.kill(second, signal.SIGKILL)  # the next restart waits twice as long
        gateway.wait_for(lambda e: e.get("event") == "worker_died" and e["pid"] == second, what="2nd death")
        after = gateway.mark()
        started = time.monotonic()
        gateway._proc.send_signal(signal.SIGTERM)  # mid-pause
        with contextlib.suppress(subprocess.TimeoutExpired):
            gateway._proc.wait(2 * RESTART_PAUSE + 5)
        elapsed = time.monotonic() - started
    finally:
        for event in gateway.events:  # a worker started after SIGTERM would outlive the parent
            pids = event.get("pids", []) if event.get("event") == "workers_started" else [event.get("pid")]
            if event.get("event") in ("workers_started", "worker_restarted"):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        code = gateway.stop()
    assert code == 0
    assert elapsed < 2 * RESTART_PAUSE  # the pause was cut short, and nothing was left to wait for
    assert [e for e in gateway.events[after:] if e.get("event") == "worker_restarted"] == []
    assert any(e.get("event") == "workers_stopped" for e in gateway.events[after:])
