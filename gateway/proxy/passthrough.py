"""Relaying an OpenAI-format stream as it is: the upstream's own bytes, cut at event boundaries.

The client gets exactly the bytes the upstream sent (its own protocol, byte for byte), but only
whole events: the SSE decoder says where the last complete event ends (`boundary`), and the bytes
after it wait for the rest of their event, so an error event after a cut is never glued to half a
line. From the decoded events the relay learns what it must: `[DONE]` (the stream is complete), the
upstream's own error event (complete too; redacted before it is relayed, the only event that may be
changed), and the usage object (in the last chunk, when the client asked for it). A stream that ends
without either, or in the middle of an event, was cut short: the client gets an error event saying so.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import json_codec
from gateway.engine.stream_translator import gateway_error_frames, truncated_frame
from gateway.framing.events import StreamEvent, StreamFramingError
from gateway.framing.sse import SseDecoder
from gateway.proxy.stream_outcome import StreamOutcome, failure_outcome
from gateway.redaction import Redactor
from gateway.upstream.transport import UpstreamFailure, UpstreamReply

TRUNCATED_FRAME = truncated_frame()

_USAGE = re.compile(r'"usage"\s*:\s*\{')  # a usage object, not the `"usage":null` of every other chunk


async def pass_through(
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    reply: UpstreamReply,
    decoder: SseDecoder,
    redactor: Redactor,
) -> tuple[StreamOutcome, dict[str, Any] | None]:
    """Relay the stream; how it ended and the usage it reported."""
    held: list[bytes] = []  # the bytes after the last complete event, not relayed yet
    held_from = 0  # their stream offset
    ended: StreamOutcome | None = None  # "ok" at [DONE], "upstream_error" at the upstream's error event
    usage = None
    try:
        async for chunk in chunks:
            fault = None
            try:
                events = decoder.feed(chunk)
            except StreamFramingError as exc:
                events, fault = exc.events, exc
            boundary = decoder.boundary
            if boundary == held_from:  # no event completed yet
                held.append(chunk)
            else:
                if held:
                    held.append(chunk)
                    chunk = b"".join(held)
                    held = []
                cut = boundary - held_from
                if cut < len(chunk):
                    held.append(chunk[cut:])
                    chunk = chunk[:cut]
                errors = None
                for event in events:
                    data = event.data
                    if data == "[DONE]":
                        ended = ended or "ok"
                    elif (event.event == "error" or '"error"' in data) and _is_error(event):
                        ended = ended or "upstream_error"
                        errors = [*errors, event] if errors else [event]
                    elif (at := data.find('"usage"')) >= 0 and _USAGE.match(data, at):
                        usage = _usage_of(data) or usage
                if errors:
                    chunk = _redacted_errors(chunk, held_from, events, errors, redactor)
                held_from = boundary
                await response.write(chunk)
            if fault is not None:  # the stream cannot go on: stop the upstream
                reply.abort()
                if ended is not None:  # complete already: what followed its end is not the client's
                    return ended, usage
                await response.write(gateway_error_frames(fault.message, fault.code))
                return fault.outcome, usage
    except UpstreamFailure as failure:
        if ended is not None:  # the upstream broke after the end of its stream: the client has it all
            return ended, usage
        await response.write(gateway_error_frames(failure.message, failure.code))
        return failure_outcome(failure), usage
    if held and not decoder.has_partial_event():  # comments or blank lines after the last event
        await response.write(b"".join(held))
    if ended is None:
        await response.write(TRUNCATED_FRAME)
        return "truncated", usage
    return ended, usage


def _is_error(event: StreamEvent) -> bool:
    """An error event of the upstream's own: `event: error`, or data `{"error": ...}`."""
    if event.event == "error":
        return True
    try:
        data = json_codec.loads(event.data)
    except json_codec.JSONDecodeError:
        return False
    return isinstance(data, dict) and "error" in data


def _usage_of(data: str) -> dict[str, Any] | None:
    try:
        usage = json_codec.loads(data).get("usage")
    except (json_codec.JSONDecodeError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


def _redacted_errors(
    raw: bytes, offset: int, events: list[StreamEvent], errors: list[StreamEvent], redactor: Redactor
) -> bytes:
    """`raw` (whole events, from stream offset `offset`) with each error event's bytes redacted."""
    out = []
    kept = 0  # raw[:kept] is in `out`
    start = 0
    for event in events:
        end = event.end - offset
        if any(event is error for error in errors):
            out.append(raw[kept:start])
            out.append(_redacted_event(raw[start:end], event, redactor))
            kept = end
        start = end
    out.append(raw[kept:])
    return b"".join(out)


def _redacted_event(block: bytes, event: StreamEvent, redactor: Redactor) -> bytes:
    text = block.decode("utf-8", errors="replace")
    if redactor.redact(text) == text:
        return block  # nothing to hide: as the upstream sent it
    try:
        data = json_codec.dumps(redactor.redact_json(json_codec.loads(event.data))).decode()
    except json_codec.JSONDecodeError:
        data = redactor.redact(event.data)
    head = f"event: {event.event}\n" if event.event else ""
    return (head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n").encode()
