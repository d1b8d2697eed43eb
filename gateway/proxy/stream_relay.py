"""Relaying a streamed reply to the client as it arrives: bytes as they are, or translated."""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import AccessFields
from gateway.engine.dialect import Operation
from gateway.engine.stream_translator import StreamTranslator, error_frame
from gateway.framing import DECODERS
from gateway.framing.sse import DONE_FRAME
from gateway.rules.context import EvalContext
from gateway.upstream.transport import UpstreamFailure, UpstreamReply

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _failure_frame(failure: UpstreamFailure) -> bytes:
    error = {"message": failure.message, "type": "server_error", "param": None, "code": failure.code}
    return error_frame(error) + DONE_FRAME


async def relay_stream(
    request: web.Request,
    reply: UpstreamReply,
    operation: Operation,
    ctx: EvalContext,
    access: AccessFields,
    headers: dict[str, str],
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    await response.prepare(request)
    if operation.stream is None:
        await _pass_through(response, reply)
    else:
        translator = StreamTranslator(operation.stream, ctx)
        await _translate(response, reply, translator)
        if translator.usage is not None:
            access["usage"] = translator.usage
    await response.write_eof()
    return response


async def _pass_through(response: web.StreamResponse, reply: UpstreamReply) -> None:
    try:
        async for chunk in reply.chunks():
            await response.write(chunk)
    except UpstreamFailure as failure:
        await response.write(_failure_frame(failure))


async def _translate(
    response: web.StreamResponse, reply: UpstreamReply, translator: StreamTranslator
) -> None:
    decoder = DECODERS[translator.spec.framing]()
    try:
        async for chunk in reply.chunks():
            if translator.done:
                continue  # drain to the end so the connection can be reused
            out = b"".join([translator.on_event(event) for event in decoder.feed(chunk)])
            if out:
                await response.write(out)
        tail = translator.on_close(truncated=decoder.has_partial_event())
    except UpstreamFailure as failure:
        tail = b"" if translator.done else _failure_frame(failure)
    if tail:
        await response.write(tail)
