"""Where canonical stream chunks go: framed for the client, in the client's own protocol.

A translated stream produces canonical objects (OpenAI chat chunks, an error, the end); a sink turns
them into the bytes the client reads. The canonical sink frames them as they are (`data:` lines and
`data: [DONE]`); a protocol sink first runs the client protocol's stream rules over every chunk
(state, events out: `{event, data}`) and frames what they produce (`event:` + `data:` lines, no
[DONE]); errors, mid-stream ones included, are the protocol's error event.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from gateway import json_codec
from gateway.engine.dialect import StreamStep, step_applies
from gateway.engine.protocol import ClientOperation, ClientProtocol
from gateway.framing.sse import DONE_FRAME, encode_data
from gateway.rules.context import EvalContext

log = structlog.get_logger("gateway.stream")


class StreamSink(Protocol):
    def chunk(self, chunk: Any) -> bytes: ...
    def done(self) -> bytes: ...
    def error(self, error: dict[str, Any]) -> bytes: ...


def error_object(message: str, code: str, type_: str = "server_error") -> dict[str, Any]:
    return {"message": message, "type": type_, "param": None, "code": code}


class CanonicalSink:
    """OpenAI's framing: each chunk a `data:` line; an error `data: {"error": ...}` then `[DONE]`."""

    __slots__ = ()

    def chunk(self, chunk: Any) -> bytes:
        return encode_data(json_codec.dumps(chunk))

    def done(self) -> bytes:
        return DONE_FRAME

    def error(self, error: dict[str, Any]) -> bytes:
        return encode_data(json_codec.dumps({"error": error})) + DONE_FRAME


CANONICAL_SINK = CanonicalSink()


def event_frame(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json_codec.dumps(data) + b"\n\n"


def protocol_error_event(protocol: ClientProtocol, error: dict[str, Any]) -> bytes:
    """A canonical error as the protocol's error event (an overloaded upstream is its 529 kind)."""
    status = 529 if error.get("code") == "overloaded" else 500
    _, body = protocol.error(status, error)
    return event_frame(str(body.get("type", "error")), body)


class NativeErrorSink:
    """The gateway's own errors inside a stream relayed from an upstream that speaks the client's
    protocol: the protocol's error event (the relay writes everything else as it came)."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol

    def chunk(self, chunk: Any) -> bytes:
        return b""

    def done(self) -> bytes:
        return b""

    def error(self, error: dict[str, Any]) -> bytes:
        return protocol_error_event(self.protocol, error)


class StreamKeeper(Protocol):
    """Takes the events a stream ends with (the response store: the whole response is in one)."""

    def stream_event(self, name: str, data: Any) -> None: ...


class ProtocolSink:
    """A client protocol's stream: its rules over every canonical chunk (`chunk` handlers) and over
    the stream's end (`done`), each emitting `{event, data}` objects; `keep` sees the end's events."""

    __slots__ = ("ctx", "ended", "keep", "protocol", "steps_chunk", "steps_done", "steps_error")

    def __init__(
        self,
        operation: ClientOperation,
        protocol: ClientProtocol,
        request: Any,
        client_request: Any = None,
        keep: StreamKeeper | None = None,
    ) -> None:
        spec = operation.stream
        assert spec is not None, f"{operation.key} has no stream rules"
        self.protocol = protocol
        self.ctx = EvalContext(request=request, client_request=client_request)
        self.ctx.state = {name: rule(request, self.ctx) for name, rule in spec.initial_state}
        self.steps_chunk = spec.handlers.get("chunk", ())
        self.steps_done = spec.handlers.get("done", ())
        # a protocol whose stream errors are events of the stream (numbered with the rest: the
        # Responses API's `error` event) says so with `error` rules; others use its error body
        self.steps_error = spec.handlers.get("error", ())
        self.ended = False
        self.keep = keep

    def chunk(self, chunk: Any) -> bytes:
        return self._run(self.steps_chunk, chunk)

    def done(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        return self._run(self.steps_done, {}, self.keep)

    def error(self, error: dict[str, Any]) -> bytes:
        self.ended = True
        if self.steps_error:
            return self._run(self.steps_error, error)
        return protocol_error_event(self.protocol, error)

    def _run(self, steps: tuple[StreamStep, ...], data: Any, keep: StreamKeeper | None = None) -> bytes:
        ctx = self.ctx
        frames: list[bytes] = []
        for step in steps:
            if not step_applies(step, data, ctx):
                continue
            if step.emit is not None:
                emitted = step.emit(data, ctx)
                for event in emitted if isinstance(emitted, list) else (emitted,):
                    if isinstance(event, dict) and isinstance(event.get("event"), str):
                        frames.append(event_frame(event["event"], event.get("data")))
                        if keep is not None:
                            keep.stream_event(event["event"], event.get("data"))
        return b"".join(frames)


def sink_for(
    operation: ClientOperation,
    protocol: ClientProtocol,
    request: Any,
    client_request: Any = None,
    keep: StreamKeeper | None = None,
) -> StreamSink:
    """The canonical sink, or the protocol's own when its operation has stream rules."""
    if operation.stream is None:
        return CANONICAL_SINK
    return ProtocolSink(operation, protocol, request, client_request, keep)
