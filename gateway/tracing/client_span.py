"""One CLIENT span per upstream attempt, around the transport's exchange: from sending the request to
the end of its reply (a stream's last event: the relay runs inside the exchange), so its tokens and
how it ended are known when the span ends. The attempt's `traceparent` goes upstream with it.

The wrapper is put around the app's transports only when tracing is on; the attempt loop
(gateway/proxy/attempts.py) does not know of it.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.engine.registry import Target
from gateway.tracing import attributes as attr
from gateway.tracing.attributes import record_usage, stream_error
from gateway.tracing.request_trace import CURRENT, RequestTrace
from gateway.upstream.transport import Transport, UpstreamFailure, UpstreamReply

W3C = TraceContextTextMapPropagator()
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TracedTransport:
    """A transport whose every exchange, made for a traced request, is a CLIENT span."""

    def __init__(self, inner: Transport, tracer: Tracer) -> None:
        self.inner = inner
        self._tracer = tracer

    def open(
        self, target: Target, url: str, body: bytes, extra_headers: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[UpstreamReply]:
        trace = CURRENT.get()
        if trace is None:  # (not a client request: nothing to be a child of)
            return self.inner.open(target, url, body, extra_headers)
        return _TracedExchange(self, trace, target, url, body, extra_headers)


def _server(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    found: dict[str, Any] = {attr.SERVER_ADDRESS: parts.hostname} if parts.hostname else {}
    if port is not None:
        found[attr.SERVER_PORT] = port
    return found


class _TracedExchange:
    __slots__ = ("_body", "_exchange", "_extra", "_span", "_target", "_trace", "_transport", "_url", "_usage")

    def __init__(
        self,
        transport: TracedTransport,
        trace: RequestTrace,
        target: Target,
        url: str,
        body: bytes,
        extra: Mapping[str, str] | None,
    ) -> None:
        self._transport = transport
        self._trace = trace
        self._target = target
        self._url = url
        self._body = body
        self._extra = extra
        self._span: Span | None = None
        self._exchange: AbstractAsyncContextManager[UpstreamReply] | None = None
        self._usage: Any = None

    async def __aenter__(self) -> UpstreamReply:
        trace, target = self._trace, self._target
        provider = target.provider
        trace.attempts += 1
        trace.provider = provider.dialect.gen_ai_provider or provider.dialect.name
        trace.target = provider.name
        operation = trace.operation
        values: dict[str, Any] = {
            attr.PROVIDER: trace.provider,
            attr.REQUEST_MODEL: target.model,
            attr.TARGET: provider.name,
            attr.ATTEMPT: trace.attempts,
            **_server(self._url),
        }
        if operation is not None:
            values[attr.OPERATION] = operation
        span = self._transport._tracer.start_span(
            f"{operation} {target.model}" if operation else f"POST {provider.name}",
            context=trace.context,
            kind=SpanKind.CLIENT,
            attributes=values,
        )
        self._span = span
        self._usage = trace.access.usage  # what an earlier attempt left there is not this one's
        carrier: dict[str, str] = dict(self._extra) if self._extra else {}
        W3C.inject(carrier, context=set_span_in_context(span))
        self._exchange = self._transport.inner.open(target, self._url, self._body, carrier)
        try:
            reply = await self._exchange.__aenter__()
        except BaseException as exc:
            self._end(exc)
            raise
        span.set_attribute(attr.STATUS_CODE, reply.status)
        if reply.status >= 300:
            span.set_attribute(attr.ERROR_TYPE, str(reply.status))
            span.set_status(Status(StatusCode.ERROR))
        return reply

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        assert self._exchange is not None
        try:
            await self._exchange.__aexit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        access = self._trace.access
        if access.usage is not self._usage:
            record_usage(span, access.usage)
        outcome = access.stream_outcome
        if outcome is not None:  # this attempt's stream started (no other attempt follows it)
            span.set_attribute(attr.STREAM_OUTCOME, outcome)
        if isinstance(exc, asyncio.CancelledError) or outcome == "client_closed":  # the edge's 499
            span.set_attribute(attr.ERROR_TYPE, "client_closed")
        elif exc is not None:
            failure = exc.code if isinstance(exc, UpstreamFailure) else type(exc).__qualname__
            span.set_attribute(attr.ERROR_TYPE, failure)
            span.set_status(Status(StatusCode.ERROR))
        elif stream_error(access) is not None:
            span.set_attribute(attr.ERROR_TYPE, str(outcome))
            span.set_status(Status(StatusCode.ERROR))
        span.end()
