"""Log lines to a binary stream in about two writes per event-loop iteration, not one per line.

Writing and flushing every line costs one write syscall per log event, i.e. one per request at
least. `CoalescedLines` writes the first line of a loop iteration at once, and buffers the lines
that follow it in the same iteration for one write + flush scheduled with `loop.call_soon`: under
load N lines cost ~2 syscalls, and a line is never held past the iteration it was logged in. Writing
the first line at once keeps what a line-per-write log gave at low load: an access line is in the log
before the client it describes has its response (aiohttp sends a response after the edge
logged it, in the same iteration). Outside a running loop (start-up, shutdown, another thread) a
line is written at once too, after whatever is buffered, so lines are never reordered. `flush()` is
also called at exit, before a fork and when logging is reconfigured.

A stream that fails costs log lines, never a request (a log call is made on the request's path):
lines that cannot be written are dropped and counted in `dropped_lines`. A broken pipe or a closed
stream is broken for good, and later lines are dropped without trying; any other OSError (a full
disk, a full non-blocking pipe) costs only the lines of that write.

It is structlog's wrapped logger too: `msg`, `info`, ... take one rendered line (bytes), like
`structlog.BytesLogger`.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from typing import Any, BinaryIO

MAX_BUFFERED = 256 * 1024  # bytes; more than this in one iteration is written at once


class CoalescedLines:
    __slots__ = ("__weakref__", "_broken", "_buffer", "_lock", "_stream", "_window_on", "dropped_lines")

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        # copied into one buffer, not kept as bytes objects: many live ~1 KiB allocations per
        # iteration made the serializer's own allocations several times slower
        self._buffer = bytearray()
        self._lock = threading.Lock()
        # the loop whose current iteration has written its first line (later ones are buffered)
        self._window_on: asyncio.AbstractEventLoop | None = None
        self._broken = False  # the reader is gone or the stream closed: nothing is written any more
        self.dropped_lines = 0
        _LIVE.add(self)

    def write_line(self, line: bytes) -> None:
        """Write `line` (without its newline) now if it is the first of this loop iteration, else
        at the end of the iteration."""
        loop = asyncio.events._get_running_loop()  # None outside a loop, without raising
        with self._lock:
            buffer = self._buffer
            buffer += line
            buffer += b"\n"
            if loop is None:
                self._write_buffered()
            elif self._window_on is not loop:
                self._window_on = loop
                loop.call_soon(self._end_window, loop)
                self._write_buffered()
            elif len(buffer) > MAX_BUFFERED:
                self._write_buffered()

    def flush(self) -> None:
        """Write and flush everything buffered (nothing happens when nothing is)."""
        with self._lock:
            self._write_buffered()

    def _end_window(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called soon after an iteration's first line: the lines after it, and a fresh window."""
        with self._lock:
            if self._window_on is loop:  # a late call from another loop leaves this one's window
                self._window_on = None
            self._write_buffered()

    def _write_buffered(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        if not self._broken:
            try:
                self._stream.write(buffer)  # under the lock, so nothing resizes it meanwhile
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # EPIPE; ValueError: the stream was closed
                self._broken = True
            except OSError:
                pass  # this write's lines are lost; the next write tries again
            else:
                buffer.clear()
                return
        self.dropped_lines += buffer.count(b"\n")
        buffer.clear()  # a failing stream must not get the same lines again

    def __call__(self, *_args: Any) -> CoalescedLines:
        """As a structlog logger factory: every logger writes to this one buffer."""
        return self

    def __repr__(self) -> str:
        return f"<CoalescedLines(stream={self._stream!r})>"

    msg = log = debug = info = warn = warning = write_line
    fatal = failure = err = error = critical = exception = write_line


_LIVE: weakref.WeakSet[CoalescedLines] = weakref.WeakSet()


def flush_all() -> None:
    """Flush every live output (at exit, before a fork)."""
    for output in list(_LIVE):
        output.flush()


def _forget_in_child() -> None:
    """After a fork: lines another thread buffered meanwhile are the parent's to write, and a lock
    it held would never be released here."""
    for output in list(_LIVE):
        output._buffer = bytearray()
        output._lock = threading.Lock()
        output._window_on = None


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=flush_all, after_in_child=_forget_in_child)
