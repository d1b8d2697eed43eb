"""structlog, configured once: the request's fields first (log_context), ISO UTC timestamps, JSON
lines (orjson) in production, a pretty console on a TTY.

JSON lines go through `CoalescedLines` (about two writes per event-loop iteration, not one per line),
and the per-request access event has a direct path, `AccessLog`, that renders exactly what the JSON
processor chain would, without walking it.

The standard-library loggers of aiohttp and asyncio come through here too (`LibraryRecords`), reduced
to what cannot quote a request: aiohttp's messages and exceptions carry the raw request head."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import MutableMapping
from typing import Any, BinaryIO, Literal

import orjson
import structlog

from gateway.log_context import merge_request_fields
from gateway.log_output import CoalescedLines


class IsoUtcTimestamp:
    """`timestamp` in ISO 8601 UTC with microseconds, like structlog's TimeStamper(fmt="iso",
    utc=True), but formatting the date and time only once per second (it runs on every request)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["timestamp"] = self.now()
        return event

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        # %-formatting: a third cheaper than the f-string with int() (%d truncates the same way)
        return "%s.%06dZ" % (self._prefix, (now - second) * 1_000_000)  # noqa: UP031


class _JsonInfoEvents:
    """`info` events rendered as the JSON chain renders them, without walking it: the same keys in
    the same order (the keywords, `event`, the request's fields, `level`, `timestamp`), the same
    renderer, the same output. Like a cached structlog logger it follows the chain list it was
    configured with, and steps aside when that list no longer ends with its renderer (which is what
    `structlog.testing.capture_logs()` does)."""

    __slots__ = ("_chain", "_output", "_renderer", "_stamp")

    def __init__(
        self,
        chain: list[structlog.typing.Processor],
        stamp: IsoUtcTimestamp,
        renderer: structlog.processors.JSONRenderer,
        output: CoalescedLines,
    ) -> None:
        self._chain = chain
        self._stamp = stamp
        self._renderer = renderer
        self._output = output

    def emit(self, event: str, fields: dict[str, Any]) -> bool:
        """Write one event (False, writing nothing, when the chain is not ours right now)."""
        if self._chain[-1] is not self._renderer:
            return False
        fields["event"] = event
        merge_request_fields(None, "info", fields)
        fields["level"] = "info"
        fields["timestamp"] = self._stamp.now()
        # what the renderer does (its serializer with its fallback), without its call
        self._output.write_line(orjson.dumps(fields, default=_json_fallback))
        return True


def _json_fallback(value: Any) -> Any:
    """A value JSON has no type for, in a log line: its `__structlog__()` if it has one, else its repr
    (structlog's own fallback, minus its thread-local wrapper case)."""
    to_structlog = getattr(value, "__structlog__", None)
    return to_structlog() if to_structlog is not None else repr(value)


class AccessLog:
    """The `info` events of one logger, on the direct JSON path when logging is JSON lines at level
    info or below, else through structlog (console, a capture in tests, not configured yet)."""

    __slots__ = ("_structlog",)

    def __init__(self, name: str) -> None:
        self._structlog = structlog.get_logger(name)

    def info(self, event: str, **fields: Any) -> None:
        self.event(event, fields)

    def event(self, event: str, fields: dict[str, Any]) -> None:
        """`info(event, **fields)` from a dict the caller built (and hands over: it is written into)."""
        direct = _direct
        if direct is None or not direct.emit(event, fields):
            self._structlog.info(event, **fields)


class LibraryRecords(logging.Handler):
    """Records of the standard-library loggers of LIBRARY_LOGGERS as structlog `library_log` events,
    keeping the logger, the level, the first line of the message *template* (never its arguments),
    and of an exception its class and the frames of its traceback (never its message): aiohttp's
    arguments and exception messages quote raw request bytes, a gateway key among them."""

    def emit(self, record: logging.LogRecord) -> None:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        fields: dict[str, Any] = {"logger": record.name, "detail": template.split("\n", 1)[0][:200]}
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["reason"] = type(exc).__name__
            fields["stack"] = "".join(traceback.format_tb(exc.__traceback__))
        structlog.get_logger(record.name).log(record.levelno, "library_log", **fields)


LIBRARY_LOGGERS = ("aiohttp", "asyncio")


def _route_library_loggers(level: int) -> None:
    """aiohttp.server, aiohttp.access, aiohttp.web, aiohttp.internal, ... and asyncio: through
    LibraryRecords only (not the root logger's handlers, nor Python's last-resort stderr handler)."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers = [LibraryRecords()]
        library.setLevel(level)
        library.propagate = False


_direct: _JsonInfoEvents | None = None  # set by configure_logging for JSON lines at info or below
_output: CoalescedLines | None = None  # the JSON-lines output in use, flushed when replaced

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto", *, stream: BinaryIO | None = None
) -> None:
    """JSON lines go to `stream` (default: stdout's bytes), the console to sys.stdout."""
    global _direct, _output
    if _output is not None:
        _output.flush()  # lines logged so far go out before anything the new configuration writes
    _direct = _output = None
    _route_library_loggers(_LEVELS[level])
    pretty = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    stamp = IsoUtcTimestamp()
    shared: list[structlog.typing.Processor] = [
        merge_request_fields,
        structlog.processors.add_log_level,
        stamp,
    ]
    if pretty:
        structlog.configure(
            processors=[*shared, structlog.dev.ConsoleRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
            cache_logger_on_first_use=True,
        )
        return
    renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps, default=_json_fallback)
    chain: list[structlog.typing.Processor] = [*shared, structlog.processors.format_exc_info, renderer]
    _output = CoalescedLines(sys.stdout.buffer if stream is None else stream)
    structlog.configure(
        processors=chain,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_output,
        cache_logger_on_first_use=True,
    )
    if _LEVELS[level] <= logging.INFO:
        _direct = _JsonInfoEvents(chain, stamp, renderer, _output)
