"""`--workers N`: N gateway processes sharing one port (SO_REUSEPORT), supervised by this one.

The parent reserves the port, starts the workers with `--reuse-port`, forwards SIGHUP (every worker
reloads) and SIGTERM/SIGINT (every worker drains, then the parent exits 0), and restarts a worker
that dies on its own. Metrics are aggregated across workers through PROMETHEUS_MULTIPROC_DIR.

The pause before a restart ends early when SIGTERM arrives (the handler writes to a pipe the pause
waits on), and no worker is started once stopping: one started after the others were told to stop
would never be told, and the parent would wait on it until killed.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

import structlog

from gateway.observability.metrics import worker_exited

log = structlog.get_logger("gateway.workers")

RESTART_PAUSE = 1.0  # a worker that keeps dying is restarted ever more slowly, up to MAX_RESTART_PAUSE
MAX_RESTART_PAUSE = 30.0


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) with SO_REUSEPORT: it fixes the port, even when `port` is 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def supervise(worker_argv: list[str], host: str, port: int, count: int) -> int:
    reserved = reserve_port(host, port)
    bound_port = reserved.getsockname()[1]
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    command = [
        sys.executable,
        "-m",
        "gateway",
        *worker_argv,
        "--host",
        host,
        "--port",
        str(bound_port),
        "--reuse-port",
    ]
    workers: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False
    woken, wake = os.pipe()  # written when stopping: ends a restart pause early
    os.set_blocking(wake, False)

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, env=env)
        workers[process.pid] = process
        if stopping:  # SIGTERM came while it was being started: it stops with the others
            process.send_signal(signal.SIGTERM)
        return process

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
            signum = signal.SIGTERM
            with contextlib.suppress(BlockingIOError):  # full: the pause is woken already
                os.write(wake, b"x")
        for process in list(workers.values()):
            if process.poll() is None:
                process.send_signal(signum)

    def pause(seconds: float) -> None:
        """Sleep `seconds`, or less when stopping (a SIGHUP meanwhile does not end it)."""
        deadline = time.monotonic() + seconds
        while not stopping and (left := deadline - time.monotonic()) > 0:
            select.select([woken], [], [], left)

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for _ in range(count):
        start()
    log.info("workers_started", count=count, port=bound_port, pids=sorted(workers))
    failed = False
    restart_in = RESTART_PAUSE
    try:
        while workers:
            pid, status = os.waitpid(-1, 0)
            process = workers.pop(pid, None)
            if process is None:
                continue
            worker_exited(pid, metrics_dir)  # its live gauges stop counting; its counters stay
            code = os.waitstatus_to_exitcode(status)
            if stopping:
                # a worker told to stop before it set up its handlers ends by the signal: nothing lost
                failed = failed or code not in (0, -signal.SIGTERM)
                continue
            log.error("worker_died", pid=pid, exit_code=code, restart_in_s=restart_in)
            pause(restart_in)
            if stopping:
                continue
            restart_in = min(restart_in * 2, MAX_RESTART_PAUSE)
            log.info("worker_restarted", pid=start().pid, replaces=pid)
    finally:
        reserved.close()
        os.close(woken)
        os.close(wake)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("workers_stopped")
    return 1 if failed else 0
