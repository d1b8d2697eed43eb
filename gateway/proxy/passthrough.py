"""Relaying an OpenAI-format stream as it is: the upstream's own bytes, cut at event boundaries.

The client gets exactly the bytes the upstream sent (its own protocol, byte for byte), but only
whole events: the SSE decoder says where the last complete event ends (`boundary`), and the bytes
after it wait for the rest of their event, so an error event after a cut is never glued to half a
line. From the decoded events the relay learns what it must: `[DONE]` (the stream is complete), the
upstream's own error event (complete too; redacted before it is relayed), and the usage object (in the
last chunk: the gateway asks the upstream for it whatever the client asked). A stream that ends
without either, or in the middle of an event, was cut short: the client gets an error event saying so.

The same relay serves a client protocol's own stream to an upstream that speaks it natively
(`end_event`: the event that completes it, e.g. `message_stop`; `usage_of`: the usage each event
carries; `sink`: the protocol's error events).

A client that did not ask for usage (`show_usage` false) gets what OpenAI sends such a client: no
usage chunk and no `usage` member. OpenAI writes that member last, as `,"usage":null}` at the end of
the event's data, and only that is cut from the bytes: inside a JSON string every quote is escaped,
so those bytes cannot be content, and ending the data they are a member of the chunk itself, not of
an object inside it. A usage member spelled any other way is left out by encoding that event anew;
the usage chunk is not relayed. Every other byte is the upstream's, as it sent it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from gateway import json_codec
from gateway.engine.client_stream import CANONICAL_SINK, StreamSink
from gateway.engine.stream_translator import gateway_error_frames, truncated_frame
from gateway.framing.events import StreamEvent, StreamFramingError
from gateway.framing.sse import SseDecoder
from gateway.proxy.stream_outcome import StreamOutcome, failure_outcome
from gateway.redaction import Redactor
from gateway.upstream.transport import UpstreamFailure, UpstreamReply

TRUNCATED_FRAME = truncated_frame()

_USAGE = re.compile(r'"usage"\s*:\s*\{')  # a usage object, not the `"usage":null` of every other chunk
_NULL_USAGE_LAST = ',"usage":null}'  # OpenAI's member, last in the chunk
_NULL_USAGE_END = _NULL_USAGE_LAST.encode()
_NULL_USAGE_MEMBER = b',"usage":null'


async def pass_through(
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    reply: UpstreamReply,
    decoder: SseDecoder,
    redactor: Redactor,
    *,
    show_usage: bool,
    end_event: str | None = None,
    usage_of: Callable[[str], dict[str, Any] | None] | None = None,
    sink: StreamSink = CANONICAL_SINK,
    observe: Callable[[str], None] | None = None,
) -> tuple[StreamOutcome, dict[str, Any] | None]:
    """Relay the stream; how it ended and the usage it reported (shown to the client or not; the
    pieces `usage_of` finds in successive events merged). `observe` sees every event's data but
    errors' (a traced request's: reply_summary)."""
    read_usage = usage_of or _usage_of
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
                edits: dict[int, bool] | None = None  # event end -> is an error (else: its usage goes)
                nulls = 0  # events ending with OpenAI's `,"usage":null}`, for a client that did not ask
                for event in events:
                    data = event.data
                    if (event.event == "error" or '"error"' in data) and _is_error(event):
                        ended = ended or "upstream_error"
                        edits = edits or {}
                        edits[event.end] = True
                        continue
                    if data == "[DONE]" or (end_event is not None and event.event == end_event):
                        ended = ended or "ok"  # (a protocol's last event may carry the usage too)
                    if observe is not None:
                        observe(data)
                    if (at := data.find('"usage"')) >= 0:
                        if usage_of is not None or _USAGE.match(data, at):
                            piece = read_usage(data)
                            if piece:
                                usage = {**usage, **piece} if usage else piece
                        if show_usage:
                            pass
                        elif data.endswith(_NULL_USAGE_LAST):
                            nulls += 1
                        else:
                            edits = edits or {}
                            edits[event.end] = False
                if nulls:
                    cut_all = chunk.replace(_NULL_USAGE_END, b"}")
                    if edits is None and len(chunk) - len(cut_all) == nulls * len(_NULL_USAGE_MEMBER):
                        # (the usual read) each of those events had these bytes once, at its end, and
                        # no other event had them: all cut at once
                        chunk = cut_all
                    else:
                        edits = edits or {}
                        for event in events:
                            if event.end not in edits and event.data.endswith(_NULL_USAGE_LAST):
                                edits[event.end] = False
                if edits:
                    chunk = _edited(chunk, held_from, events, edits, redactor)
                held_from = boundary
                await response.write(chunk)
            if fault is not None:  # the stream cannot go on: stop the upstream
                reply.abort()
                if ended is not None:  # complete already: what followed its end is not the client's
                    return ended, usage
                await response.write(gateway_error_frames(fault.message, fault.code, sink))
                return fault.outcome, usage
    except UpstreamFailure as failure:
        if ended is not None:  # the upstream broke after the end of its stream: the client has it all
            return ended, usage
        await response.write(gateway_error_frames(failure.message, failure.code, sink))
        return failure_outcome(failure), usage
    if held and not decoder.has_partial_event():  # comments or blank lines after the last event
        await response.write(b"".join(held))
    if ended is None:
        await response.write(TRUNCATED_FRAME if sink is CANONICAL_SINK else truncated_frame(sink))
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


def _edited(
    raw: bytes, offset: int, events: list[StreamEvent], edits: dict[int, bool], redactor: Redactor
) -> bytes:
    """`raw` (whole events, from stream offset `offset`) with the bytes of each event in `edits`
    (by its end) changed: an error event redacted, another one without its usage."""
    out = []
    kept = 0  # raw[:kept] is in `out`
    start = 0
    for event in events:
        end = event.end - offset
        error = edits.get(event.end)
        if error is not None:
            out.append(raw[kept:start])
            block = raw[start:end]
            out.append(_redacted_event(block, event, redactor) if error else _without_usage(block, event))
            kept = end
        start = end
    out.append(raw[kept:])
    return b"".join(out)


def _without_usage(block: bytes, event: StreamEvent) -> bytes:
    """An event's bytes as OpenAI sends them to a client that did not ask for usage: nothing for the
    usage chunk, the chunk without its `usage` member (the upstream's bytes but for the member, when
    written as OpenAI writes it), or the event as it came when its data has no such member."""
    data = event.data
    if data.endswith(_NULL_USAGE_LAST):  # the last data line ends with it
        at = block.rindex(_NULL_USAGE_MEMBER)
        return block[:at] + block[at + len(_NULL_USAGE_MEMBER) :]
    try:
        chunk = json_codec.loads(data)
    except json_codec.JSONDecodeError:
        return block
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return block  # "usage" inside the chunk, not the chunk's
    if chunk["usage"] is not None and not chunk.get("choices"):
        return b""  # the usage chunk
    del chunk["usage"]
    head = f"event: {event.event}\n" if event.event else ""
    return (head + "data: " + json_codec.dumps_str(chunk) + "\n\n").encode()


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
