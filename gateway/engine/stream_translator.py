"""Per-request stream translation: upstream events in, canonical chunks out, state in between.

One translator per streamed request. For every event it finds the dialect's steps for the event's
name (or `*`), and runs each step whose `when` holds: `set` updates the state (all values computed
first, then applied), `emit` produces chunks, `error` sends an OpenAI error event and ends the
stream, `end` marks the stream complete. The canonical chunks, the error and the end go to the
client's sink (client_stream): OpenAI's framing, or the client protocol's own events.

The text of an error the translator relays (the `error` step's output, a rule's `fail` message) may
echo what the upstream received, auth headers included: it goes through the provider's redactor.
Successful events are never touched.

Usage is the gateway's to count and the client's to see only when it asked. Dialects emit the usage
the upstream reported (OpenAI's layout: a `choices: []` chunk after the last) whatever the client
asked; the translator keeps it (`usage`, for the key's `tpm`, metrics and the access log) and, for a
client without `stream_options.include_usage: true`, leaves out that chunk and every chunk's `usage`
member, as OpenAI does. This is the one place that decides it for translated streams (the
pass-through relay does the same for OpenAI's own bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import structlog

from gateway import json_codec
from gateway.engine.client_stream import CANONICAL_SINK, StreamSink, error_object
from gateway.engine.dialect import StreamSpec, StreamStep
from gateway.errors import normalize_error
from gateway.framing.events import StreamEvent
from gateway.redaction import Redactor
from gateway.rules.compiler import is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure

log = structlog.get_logger("gateway.stream")

# why a translated stream ended early: the upstream's own error event (the `error` step), an event
# that is not JSON, rules that could not translate an event, or a stream cut short
TranslationFailure = Literal["upstream_error", "invalid", "translation_failed", "truncated"]

_NO_SECRETS = Redactor()


def usage_requested(request: Any) -> bool:
    """Whether the client asked to be shown a stream's usage (`stream_options.include_usage: true`)."""
    options = request.get("stream_options") if isinstance(request, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def gateway_error_frames(message: str, code: str, sink: StreamSink = CANONICAL_SINK) -> bytes:
    """An error the gateway itself reports inside a stream, then the end of the stream."""
    return sink.error(error_object(message, code))


TRUNCATED = ("the upstream stream ended before it was complete", "upstream_stream_truncated")


def truncated_frame(sink: StreamSink = CANONICAL_SINK) -> bytes:
    return gateway_error_frames(*TRUNCATED, sink=sink)


class StreamTranslator:
    __slots__ = (
        "ctx",
        "done",
        "failed",
        "failure",
        "observe",
        "redactor",
        "show_usage",
        "sink",
        "spec",
        "usage",
    )

    def __init__(
        self,
        spec: StreamSpec,
        ctx: EvalContext,
        redactor: Redactor = _NO_SECRETS,
        sink: StreamSink = CANONICAL_SINK,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.ctx = ctx
        self.redactor = redactor
        self.done = False
        self.failed = False  # ended by an error (ours or the upstream's), not by its terminal event
        self.failure: TranslationFailure | None = None  # why, when `failed`
        self.usage: dict[str, Any] | None = None  # the last the upstream reported, shown or not
        self.show_usage = usage_requested(ctx.request)
        # sees every canonical chunk (a traced request's: reply_summary); None for the others
        self.observe: Callable[[Any], None] | None = None
        ctx.state = {name: rule(ctx.request, ctx) for name, rule in spec.initial_state}

    def on_event(self, event: StreamEvent) -> bytes:
        if self.done:
            return b""
        if self.spec.sentinel is not None and event.data == self.spec.sentinel:
            self.done = True
            return self.sink.done()
        try:
            data = json_codec.loads(event.data)
        except json_codec.JSONDecodeError:
            return self._fail(
                "upstream sent a stream event that is not valid JSON", "upstream_invalid_event", "invalid"
            )
        try:
            return self._run(self._name(event, data), data)
        except Exception as exc:
            return self._failed_by(exc)

    def on_close(self, truncated: bool = False) -> bytes:
        """The upstream closed its side; complete the client's stream one way or the other."""
        if self.done:
            return b""
        if self.spec.end_on_close and not truncated:
            frames = (
                self._guarded(lambda: self._run_steps(self.spec.on_close, {})) if self.spec.on_close else b""
            )
            if self.done:  # an on_close step ended the stream itself
                return frames
            self.done = True
            return frames + self.sink.done()
        self.done = self.failed = True
        self.failure = "truncated"
        return truncated_frame(self.sink)

    def _guarded(self, run: Callable[[], bytes]) -> bytes:
        """Run rules; whatever goes wrong becomes an error event that ends the stream."""
        try:
            return run()
        except Exception as exc:
            return self._failed_by(exc)

    def _failed_by(self, exc: Exception) -> bytes:
        if isinstance(exc, RuleFailure):  # fail(message): the message may quote the upstream
            return self._fail(self.redactor.redact(str(exc)), "translation_failed", "translation_failed")
        # a rule met data it was not written for
        log.warning("stream_translation_error", error=self.redactor.redact(repr(exc)))
        message = "the gateway could not translate an upstream stream event"
        return self._fail(message, "translation_failed", "translation_failed")

    def _name(self, event: StreamEvent, data: Any) -> str:
        if self.spec.event is not None:
            name = self.spec.event(data, self.ctx)
            if isinstance(name, str):
                return name
        return event.event or "message"

    def _run(self, name: str, data: Any) -> bytes:
        steps = self.spec.handlers.get(name)
        if steps is None:
            steps = self.spec.handlers.get("*", ())
        return self._run_steps(steps, data)

    def _run_steps(self, steps: tuple[StreamStep, ...], data: Any) -> bytes:
        ctx = self.ctx
        frames: list[bytes] = []
        for step in steps:
            if step.when is not None and is_false(step.when(data, ctx)):
                continue
            if step.set_state:
                updates = [(key, rule(data, ctx)) for key, rule in step.set_state]
                ctx.state.update(updates)
            if step.emit is not None:
                self._emit(step.emit(data, ctx), frames)
            if step.error is not None:
                error = normalize_error(step.error(data, ctx), 500, "upstream stream error")
                frames.append(self.sink.error(self.redactor.redact_json(error)))
                self.done = self.failed = True
                self.failure = "upstream_error"
                break
            if step.end:
                frames.append(self.sink.done())
                self.done = True
                break
        return b"".join(frames)

    def _emit(self, emitted: Any, frames: list[bytes]) -> None:
        chunks = emitted if isinstance(emitted, list) else (emitted,)
        post_chunk = self.spec.post_chunk
        for chunk in chunks:
            if chunk is None:
                continue
            if post_chunk is not None:
                chunk = post_chunk(chunk, self.ctx)
            if self.observe is not None:
                self.observe(chunk)
            if isinstance(chunk, dict) and "usage" in chunk:
                usage = chunk["usage"]
                if usage is not None:
                    self.usage = usage
                if not self.show_usage:
                    if usage is not None and not chunk.get("choices"):
                        continue  # the usage chunk: counted, not the client's
                    chunk = {key: value for key, value in chunk.items() if key != "usage"}
            frames.append(self.sink.chunk(chunk))

    def _fail(self, message: str, code: str, failure: TranslationFailure) -> bytes:
        self.done = self.failed = True
        self.failure = failure
        return gateway_error_frames(message, code, self.sink)
