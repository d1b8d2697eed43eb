"""`--workers N`: N gateway processes sharing one port (SO_REUSEPORT), supervised by this one.

The parent reserves the port, starts the workers with `--reuse-port`, forwards SIGHUP (every worker
reloads) and SIGTERM/SIGINT (every worker drains, then the parent exits 0), and restarts a worker
that dies on its own. Metrics are aggregated across workers through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
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

    def start() -> None:
        process = subprocess.Popen(command, env=env)
        workers[process.pid] = process

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
            signum = signal.SIGTERM
        for process in list(workers.values()):
            if process.poll() is None:
                process.send_signal(signum)

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for _ in range(count):
        start()
    log.info("workers_started", count=count, port=bound_port, pids=sorted(workers))
    failed = 0
    pause = RESTART_PAUSE
    try:
        while workers:
            pid, status = os.waitpid(-1, 0)
            process = workers.pop(pid, None)
            if process is None:
                continue
            worker_exited(pid, metrics_dir)  # its live gauges stop counting; its counters stay
            code = os.waitstatus_to_exitcode(status)
            if stopping:
                failed = failed or (code != 0)
                continue
            log.error("worker_died", pid=pid, exit_code=code, restart_in_s=pause)
            time.sleep(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)
            start()
    finally:
        reserved.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("workers_stopped")
    return 1 if failed else 0
