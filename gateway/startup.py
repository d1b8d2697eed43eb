"""Why the gateway could not start, in one sentence.

Every startup failure (a config that cannot be read or is invalid, a port in use, a host that is not
this machine's, a metrics directory that is not one) ends the process with one `startup_failed` log
line and exit status 2: the user reads what to change, not a traceback through asyncio and aiohttp.
What fails after `listening` is not a startup failure and is left to surface as it does.
"""

from __future__ import annotations

import errno
import os
import socket
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.problems import ConfigError

STARTUP_FAILED = 2  # the exit status


class StartupFailure(Exception):
    """The gateway cannot start: `reason` says why, `fields` go into the log line with it."""

    def __init__(self, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


def config_failure(path: str, error: ConfigError) -> StartupFailure:
    """The one problem as the reason, or how many there are; every one in `problems`."""
    problems = error.problems
    if len(problems) == 1:
        only = problems[0]
        return StartupFailure(only if only.startswith(path) else f"{path}: {only}", problems=problems)
    return StartupFailure(
        f"{len(problems)} problems in {path} (`gateway check {path}` lists them)", problems=problems
    )


def bind_failure(exc: OSError, host: str, port: int) -> StartupFailure:
    """What a failed bind means for the user, by its errno."""
    if isinstance(exc, socket.gaierror):
        return StartupFailure(f"cannot resolve the listen host {host!r}: {exc.strerror or exc}")
    if exc.errno == errno.EADDRINUSE:
        return StartupFailure(
            f"port {port} on {host} is in use (another process listens there: stop it, or pick another "
            "port with --port; 0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return StartupFailure(
            f"no permission to listen on port {port} on {host} (ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE: pick a port of 1024 or more with --port)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupFailure(f"{host} is not an address of this machine (--host 0.0.0.0 listens on all)")
    return StartupFailure(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def check_metrics_dir(environ: Mapping[str, str]) -> None:
    """PROMETHEUS_MULTIPROC_DIR, when set, must be a directory this process can write to (the
    metrics of every worker are files in it); prometheus_client would fail later, less clearly."""
    path = environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
        raise StartupFailure(
            f"PROMETHEUS_MULTIPROC_DIR={path} is not a writable directory (create it, or unset it: "
            "--workers sets up its own)"
        )


def unexpected_failure(exc: BaseException, redact: Callable[[str], str] = str) -> StartupFailure:
    """A failure nobody foresaw, still one line: the exception (its message through `redact`: the
    configured secrets) and the line of code that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return StartupFailure(redact(f"{type(exc).__name__}: {exc}"), where=where)
