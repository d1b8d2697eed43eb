"""The real gateway as a child process (`python -m gateway ... --log-format json`), driven by its logs.

A reader thread parses every stdout line (stderr is merged in) into a list of events; tests wait for
an event by predicate with a timeout instead of sleeping. `stop()` always ends the process: SIGTERM,
wait, then SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
EVENT_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

Event = dict[str, Any]


class GatewayProcess:
    def __init__(self, config_path: Path, *extra_args: str) -> None:
        self.config_path = config_path
        self.args = [
            sys.executable,
            "-m",
            "gateway",
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-format",
            "json",
            *extra_args,
        ]
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._eof = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> GatewayProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            self.args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, name="gateway-stdout", daemon=True)
        self._reader.start()
        try:
            listening = self.wait_for_event("listening", timeout=START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.port = int(listening["port"])
        return self

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; the exit status (None if it was never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- logs ------------------------------------------------------------------------------------------
    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": None, "raw": line}
            if not isinstance(event, dict):
                event = {"event": None, "raw": line}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def mark(self) -> int:
        """The number of events so far: pass it as `after` to wait only for later events."""
        with self._cond:
            return len(self.events)

    def wait_for(
        self,
        predicate: Callable[[Event], bool],
        *,
        after: int = 0,
        timeout: float = EVENT_TIMEOUT,
        what: str = "a log event",
    ) -> Event:
        """The first event at index >= `after` that satisfies `predicate`; AssertionError on timeout."""

        def found() -> Event | None:
            return next((e for e in self.events[after:] if predicate(e)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._eof, timeout)
            event = found()
        if event is None:
            tail = "\n".join(json.dumps(e) for e in self.events[-15:])
            state = "the process exited" if self._eof else f"timed out after {timeout} s"
            raise AssertionError(f"{state} waiting for {what}; last log lines:\n{tail}")
        return event

    def wait_for_event(self, name: str, *, after: int = 0, timeout: float = EVENT_TIMEOUT) -> Event:
        return self.wait_for(lambda e: e.get("event") == name, after=after, timeout=timeout, what=repr(name))

    def reload(self, timeout: float = EVENT_TIMEOUT) -> Event:
        """SIGHUP, then the `config_reloaded` or `config_reload_failed` event it caused."""
        after = self.mark()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)
        return self.wait_for(
            lambda e: e.get("event") in ("config_reloaded", "config_reload_failed"),
            after=after,
            timeout=timeout,
            what="the reload's outcome",
        )
