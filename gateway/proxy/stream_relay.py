"""Relaying a streamed reply to the client as it arrives: bytes as they are, or translated."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import json_codec
from gateway.app_keys import AccessFields
from gateway.engine.dialect import Operation
from gateway.engine.stream_translator import StreamTranslator, gateway_error_frames, truncated_frame
from gateway.framing import DECODERS
from gateway.framing.events import StreamEvent
from gateway.rules.context import EvalContext
from gateway.upstream.transport import UpstreamFailure, UpstreamReply

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


TRUNCATED_FRAME = truncated_frame()


def _failure_frame(failure: UpstreamFailure) -> bytes:
    return gateway_error_frames(failure.message, failure.code)


async def _with_first(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def relay_stream(
    request: web.Request,
    reply: UpstreamReply,
    operation: Operation,
    ctx: EvalContext,
    access: AccessFields,
    headers: dict[str, str],
) -> web.StreamResponse:
    """Nothing reaches the client before the upstream's first bytes: until then a failure raises
    UpstreamFailure (and may be retried elsewhere); after it, failures become error events."""
    if operation.stream is None and not reply.headers.get("Content-Type", "").startswith("text/event-stream"):
        # relayed as they are, these bytes would not be a stream the client can read
        raise UpstreamFailure(
            502,
            "the upstream answered a stream request without a stream",
            "upstream_invalid_response",
            "broken",
        )
    upstream = reply.chunks()
    # built while the upstream thinks, not between its first byte and ours
    translator = StreamTranslator(operation.stream, ctx) if operation.stream is not None else None
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    try:
        first = await anext(upstream)
    except StopAsyncIteration:
        raise UpstreamFailure(
            502, "the upstream ended the stream before sending anything", "upstream_empty_stream", "broken"
        ) from None
    chunks = _with_first(first, upstream)
    try:
        await response.prepare(request)
        access["ttfb_ms"] = round((time.perf_counter() - access["started"]) * 1000, 3)
        if translator is None:
            usage = await _pass_through(response, chunks)
            if usage is not None:
                access["usage"] = usage
        else:
            await _translate(response, chunks, reply, translator)
            if translator.usage is not None:
                access["usage"] = translator.usage
        await response.write_eof()
    except ConnectionResetError:  # the client went away: stop, and let the upstream go too
        access["client_closed"] = True
        reply.abort()
    return response


def _usage_in(chunk: bytes) -> dict[str, Any] | None:
    """The `usage` object of an OpenAI chunk carried whole in these bytes (the usage chunk)."""
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage":{' in line:
            try:
                usage = json_codec.loads(line[6:]).get("usage")
            except (json_codec.JSONDecodeError, AttributeError):
                continue
            if isinstance(usage, dict):
                return usage
    return None


async def _pass_through(response: web.StreamResponse, chunks: AsyncIterator[bytes]) -> dict[str, Any] | None:
    """Upstream events as they are, each relayed once complete (never half an event, so an error
    event after a cut cannot be glued to a broken line); returns the usage the stream reported.
    A stream that stops without `[DONE]` (or an error event of its own) was cut short: the client
    is told so rather than left with a silently short answer."""
    pending = b""  # bytes after the last complete event
    finished = False  # [DONE] or the upstream's own error event went out
    usage = None
    try:
        async for chunk in chunks:
            data = pending + chunk if pending else chunk
            end = max(data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n"))
            if end < 0:
                pending = data
                continue
            cut = end + (4 if data[end : end + 4] == b"\r\n\r\n" else 2)
            complete, pending = data[:cut], data[cut:]
            await response.write(complete)
            if b'"usage":{' in complete:
                usage = _usage_in(complete) or usage
            finished = complete.rstrip().endswith(b"data: [DONE]") or b'data: {"error"' in complete
    except UpstreamFailure as failure:
        await response.write(_failure_frame(failure))
        return usage
    if not finished or pending.strip():
        await response.write(TRUNCATED_FRAME)
    return usage


async def _translate(
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    reply: UpstreamReply,
    translator: StreamTranslator,
) -> None:
    decoder = DECODERS[translator.spec.framing]()
    started = False  # the first frame goes out alone, before the rest of its read is translated
    try:
        async for chunk in chunks:
            if translator.done:
                if translator.failed:
                    reply.abort()  # we ended the stream with an error: stop the upstream now
                    return
                continue  # completed normally: drain the little that is left so the connection is reused
            events = decoder.feed(chunk)
            if not started:
                first, events = _first_frame(translator, events)
                if first:
                    started = True
                    await response.write(first)
            out = b"".join([translator.on_event(event) for event in events])
            if out:
                await response.write(out)
            if translator.failed:
                reply.abort()
                return
        flush = getattr(decoder, "flush", None)  # framings whose last event needs no terminator
        if flush is not None and not translator.done:
            out = b"".join([translator.on_event(event) for event in flush()])
            if out:
                await response.write(out)
        tail = translator.on_close(truncated=decoder.has_partial_event())
    except UpstreamFailure as failure:
        tail = b"" if translator.done else _failure_frame(failure)
    if tail:
        await response.write(tail)


def _first_frame(translator: StreamTranslator, events: list[StreamEvent]) -> tuple[bytes, list[StreamEvent]]:
    """The first non-empty translation among `events` and the events after it (none: b"", [])."""
    for i, event in enumerate(events):
        frame = translator.on_event(event)
        if frame:
            return frame, events[i + 1 :]
    return b"", []
