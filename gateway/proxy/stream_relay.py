"""Relaying a streamed reply to the client as it arrives: bytes as they are, or translated.

Nothing reaches the client before the upstream's first bytes: until then a failure raises
UpstreamFailure (and may be retried elsewhere). Once the 200 is prepared, nothing escapes `relay_stream`
but cancellation: a failed upstream (stall, reset, cut, its own error event, bytes that are not events,
an event over `upstream.max_event_bytes`) and even a bug of the gateway's own end the client's stream
with an error event then `[DONE]` (or, with the client gone, end the connection) — never with a second
HTTP response written into the body. How the stream ended is `access.stream_outcome`; the usage
the upstream reported is `access.usage` (for the key's `tpm`, metrics and the access log), whether
the client asked to be shown it (`stream_options.include_usage`) or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.engine.client_stream import CANONICAL_SINK, NativeErrorSink, StreamSink
from gateway.engine.dialect import Operation
from gateway.engine.protocol import CANONICAL_STREAM, ClientProtocol
from gateway.engine.stream_translator import StreamTranslator, gateway_error_frames, usage_requested
from gateway.framing import DECODERS
from gateway.framing.events import DEFAULT_MAX_EVENT_BYTES, StreamDecoder, StreamEvent, StreamFramingError
from gateway.framing.sse import SseDecoder
from gateway.proxy.passthrough import pass_through
from gateway.proxy.reply_summary import canonical_reply, stream_observer
from gateway.proxy.request_record import RequestRecord
from gateway.proxy.stream_outcome import StreamOutcome, failure_outcome
from gateway.redaction import Redactor
from gateway.response_cache.recording import RecordingStreamResponse
from gateway.rules.context import EvalContext
from gateway.upstream.transport import UpstreamFailure, UpstreamReply

log = structlog.get_logger("gateway.stream")

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

INTERNAL = ("the gateway failed while relaying the stream", "internal_error")
INTERNAL_ERROR_FRAME = gateway_error_frames(*INTERNAL)

_NO_SECRETS = Redactor()


class Landing(Protocol):
    """What stores the response a stream makes (the response store's Keeper): `kept` is set once a
    response was handed to it, and the bytes that carry that response wait for `landed()`."""

    kept: str | None

    async def landed(self) -> None: ...


async def _with_first(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def relay_stream(
    request: web.Request,
    reply: UpstreamReply,
    operation: Operation,
    ctx: EvalContext,
    access: RequestRecord,
    headers: dict[str, str],
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    redactor: Redactor = _NO_SECRETS,
    *,
    sink: StreamSink = CANONICAL_SINK,
    native: ClientProtocol | None = None,
    keeper: Landing | None = None,
) -> web.StreamResponse:
    """Stream the reply to the client. `max_event_bytes`: the largest upstream event held
    (`upstream.max_event_bytes`); `redactor`: the provider's, for the error events relayed; `sink`:
    where canonical chunks go (the client protocol's framing); `native`: the client's protocol when
    the upstream speaks it (its bytes are relayed as they are); `keeper`: what stores the response the
    stream makes (its bytes wait for that)."""
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
    spec = operation.stream
    if spec is None and native is None and sink is not CANONICAL_SINK:
        spec = CANONICAL_STREAM  # OpenAI-format chunks, for a client of another protocol
    translator = StreamTranslator(spec, ctx, redactor, sink) if spec is not None else None
    # an alias that caches (access.cache set) keeps the frames it is sent; no other stream pays for it
    response_type = RecordingStreamResponse if access.cache is not None else web.StreamResponse
    response = response_type(status=200, headers={**SSE_HEADERS, **headers})
    try:
        first = await anext(upstream)
    except StopAsyncIteration:
        raise UpstreamFailure(
            502, "the upstream ended the stream before sending anything", "upstream_empty_stream", "broken"
        ) from None
    chunks = _with_first(first, upstream)
    outcome: StreamOutcome = "internal_error"
    try:
        await response.prepare(request)
        access.ttfb_ms = round((time.perf_counter() - access.started) * 1000, 3)
        observe = stream_observer(access, native)  # (None unless the request is traced)
        if native is not None:
            outcome, usage = await _relay_native(
                response, chunks, reply, native, max_event_bytes, redactor, observe
            )
        elif translator is None:
            sse = SseDecoder(max_event_bytes)
            show_usage = usage_requested(ctx.request)
            outcome, usage = await pass_through(
                response, chunks, reply, sse, redactor, show_usage=show_usage, observe=observe
            )
        else:
            if access.trace_reply:
                translator.observe = lambda chunk: canonical_reply(access, chunk)
            decoder = DECODERS[translator.spec.framing](max_event_bytes)
            outcome = await _translate(response, chunks, reply, translator, decoder, keeper)
            usage = translator.usage
        if usage is not None:
            access.usage = usage
        await response.write_eof()
    except ConnectionResetError:  # the client went away: stop, and let the upstream go too
        access.client_closed = True
        outcome = "client_closed"
        reply.abort()
    except asyncio.CancelledError:  # the client went away (handler cancellation) or shutdown
        outcome = "client_closed"
        reply.abort()
        raise
    except Exception:
        if not response.prepared:  # nothing went out: the edge can still answer with a 500
            raise
        log.exception("stream_relay_failed")
        outcome = "internal_error"
        reply.abort()
        if native is not None:
            sink = NativeErrorSink(native)
        await _end_with_error(request, response, translator.sink if translator is not None else sink)
    finally:
        access.stream_outcome = outcome
    return response


async def _end_with_error(request: web.Request, response: web.StreamResponse, sink: StreamSink) -> None:
    """After a failure of the gateway's own mid-stream: an error event and the end of the body when
    the client can still be written to; otherwise the connection is closed (the client sees a cut)."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    try:
        frame = INTERNAL_ERROR_FRAME if sink is CANONICAL_SINK else gateway_error_frames(*INTERNAL, sink)
        await response.write(frame)
        await response.write_eof()
    except Exception:  # the response is in no state to take it: cut the connection instead
        transport.close()


async def _translate(
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    reply: UpstreamReply,
    translator: StreamTranslator,
    decoder: StreamDecoder,
    keeper: Landing | None = None,
) -> StreamOutcome:
    started = False  # the first frame goes out alone, before the rest of its read is translated
    try:
        async for chunk in chunks:
            if translator.done:
                if translator.failed:
                    reply.abort()  # we ended the stream with an error: stop the upstream now
                    break
                continue  # completed normally: drain the little that is left so the connection is reused
            fault = None
            try:
                events = decoder.feed(chunk)
            except StreamFramingError as exc:
                events, fault = exc.events, exc
            if not started:
                first, events = _first_frame(translator, events)
                if first:
                    started = True
                    await _write(response, first, keeper)
            out = b"".join([translator.on_event(event) for event in events])
            if out:
                await _write(response, out, keeper)
            if fault is not None:  # the stream cannot go on: stop the upstream
                reply.abort()
                if translator.done:  # complete already: what followed its end is not the client's
                    break
                frames = gateway_error_frames(fault.message, fault.code, translator.sink)
                await _write(response, frames, keeper)
                return fault.outcome
            if translator.failed:
                reply.abort()
                break
        else:
            if not translator.done:  # framings whose last event needs no terminator
                out = b"".join([translator.on_event(event) for event in decoder.flush()])
                if out:
                    await _write(response, out, keeper)
            tail = translator.on_close(truncated=decoder.has_partial_event())
            if tail:
                await _write(response, tail, keeper)
    except UpstreamFailure as failure:
        if not translator.done:
            await response.write(gateway_error_frames(failure.message, failure.code, translator.sink))
            return failure_outcome(failure)
    return translator.failure or "ok"


async def _write(response: web.StreamResponse, data: bytes, keeper: Landing | None) -> None:
    """`data` to the client, once a response it carries (the sink handed it to the keeper while
    translating it) is stored."""
    if keeper is not None and keeper.kept is not None:
        await keeper.landed()
    await response.write(data)


def _first_frame(translator: StreamTranslator, events: list[StreamEvent]) -> tuple[bytes, list[StreamEvent]]:
    """The first non-empty translation among `events` and the events after it (none: b"", [])."""
    for i, event in enumerate(events):
        frame = translator.on_event(event)
        if frame:
            return frame, events[i + 1 :]
    return b"", []


async def _relay_native(
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    reply: UpstreamReply,
    protocol: ClientProtocol,
    max_event_bytes: int,
    redactor: Redactor,
    observe: Callable[[str], None] | None = None,
) -> tuple[StreamOutcome, dict[str, Any] | None]:
    """The client protocol's own stream, relayed as it came; its usage read for the gateway's counts
    (the usage pieces of its events merged, then made canonical by the protocol's rule); `observe`
    sees its events (a traced request's)."""

    event_usage = protocol.passthrough_event_usage

    def usage_piece(data: str) -> dict[str, Any] | None:
        try:
            event = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            return None
        if not isinstance(event, dict):
            return None
        piece = event_usage(event, EvalContext()) if event_usage is not None else event.get("usage")
        return piece if isinstance(piece, dict) else None

    outcome, native_usage = await pass_through(
        response,
        chunks,
        reply,
        SseDecoder(max_event_bytes),
        redactor,
        show_usage=True,
        end_event=protocol.passthrough_end_event,
        usage_of=usage_piece,
        sink=NativeErrorSink(protocol),
        observe=observe,
    )
    usage = None
    if native_usage is not None and protocol.passthrough_usage is not None:
        usage = protocol.passthrough_usage({"usage": native_usage}, EvalContext())
    return outcome, usage if isinstance(usage, dict) else None
