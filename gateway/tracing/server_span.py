"""One SERVER span per client request, continuing the client's W3C trace (`traceparent`,
`tracestate`), named and described the GenAI conventions' way ("chat gpt-4o") once the request is
done: what it asked for, which target answered, the tokens counted, how it ended.

The middleware sits inside the edge's (which makes the request's RequestRecord and turns errors
into responses), so it sees the handler's errors as they are raised: their code is the span's
`error.type`. It binds `trace_id` into the log context, so the access event names the trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_trace_id, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import json_codec
from gateway.app_keys import ACCESS, CLIENT_PROTOCOL, REGISTRY
from gateway.errors import GatewayError
from gateway.log_context import add_request_field
from gateway.proxy.edge import UNMATCHED, Handler
from gateway.proxy.request_record import RequestRecord
from gateway.tracing import attributes as attr
from gateway.tracing.attributes import capped, record_usage, stream_error
from gateway.tracing.request_trace import CURRENT, RequestTrace
from gateway.tracing.tracing import Tracing

UNTRACED = frozenset(("/", "/healthz", "/readyz", "/metrics"))  # probes and scrapes: no one's call
_MODEL_CHARS = 256  # of a model name no route serves, on a span (whatever length the client sent)
_CLIENT_CLOSED = 499
W3C = TraceContextTextMapPropagator()


def server_span_middleware(tracing: Tracing) -> Middleware:
    tracer = tracing.tracer
    dialect_operations = tracing.operations
    capture = tracing.capture_content

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNTRACED:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None and resource.name != UNMATCHED else None
        dialect_operation = dialect_operations.get(route) if route is not None else None
        operation = attr.GEN_AI_OPERATIONS.get(dialect_operation) if dialect_operation else None
        parent = W3C.extract(request.headers)
        span = tracer.start_span(
            f"{request.method} {route or ''}".rstrip(),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={attr.METHOD: request.method, **({attr.ROUTE: route} if route else {})},
        )
        access = request[ACCESS]
        access.trace_reply = True  # what answered and why it stopped, read as the reply goes out
        trace = RequestTrace(set_span_in_context(span, parent), operation, access)
        token = CURRENT.set(trace)
        add_request_field("trace_id", format_trace_id(span.get_span_context().trace_id))
        status, error = 500, None
        try:
            response = await handler(request)
            status = response.status
            if operation in _GENERATIONS and CLIENT_PROTOCOL not in request:
                _record_reply(span, response)
            if capture and operation is not None:
                await _capture_content(span, request, response)
            return response
        except GatewayError as exc:
            status, error = exc.status, exc.code if isinstance(exc.code, str) else None
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            status, error = _CLIENT_CLOSED, "client_closed"
            raise
        except Exception as exc:
            error = type(exc).__qualname__
            raise
        finally:
            CURRENT.reset(token)
            _finish(span, trace, access, status, error, request.app[REGISTRY].current.routes)

    return traced


def _finish(
    span: Span,
    trace: RequestTrace,
    access: RequestRecord,
    status: int,
    error: str | None,
    routes: Mapping[str, object],
) -> None:
    """The span's name and attributes, now that the request is done. The name has the alias only when
    a route serves it (span names stay few, whatever model names clients send)."""
    if access.client_closed:
        status, error = _CLIENT_CLOSED, "client_closed"
    model = access.model[:_MODEL_CHARS] if isinstance(access.model, str) else None
    if trace.operation is not None and model is not None:
        span.set_attribute(attr.OPERATION, trace.operation)
        if model in routes:
            span.update_name(f"{trace.operation} {model}")
    values: dict[str, Any] = {
        attr.STATUS_CODE: status,
        attr.REQUEST_MODEL: model,
        attr.ALIAS: model if model in routes else None,
        attr.PROVIDER: trace.provider,
        attr.TARGET: trace.target,
        attr.KEY: access.key,
        attr.REQUEST_ID: access.response_headers.get("x-request-id"),
        attr.STREAM: access.stream,
        attr.STREAM_OUTCOME: access.stream_outcome,
        attr.COST: access.cost_usd,
        attr.CACHE_HIT: None if access.cache is None else access.cache == "hit",
    }
    span.set_attributes({name: value for name, value in values.items() if value is not None})
    if access.response_model is not None:  # (any protocol, streams included: reply_summary)
        span.set_attribute(attr.RESPONSE_MODEL, access.response_model)
    if access.finish_reasons:
        span.set_attribute(attr.FINISH_REASONS, access.finish_reasons)
    record_usage(span, access.usage)
    error = error or stream_error(access) or (str(status) if status >= 400 else None)
    if error is not None:
        span.set_attribute(attr.ERROR_TYPE, error)
    if status >= 500 or stream_error(access) is not None:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


_GENERATIONS = frozenset(("chat", "text_completion"))  # the operations whose replies have finish reasons


def _record_reply(span: Span, response: web.StreamResponse) -> None:
    """The response id of a JSON reply in the canonical form (an OpenAI client's: whatever the
    dialect, its reply was made canonical). The model and finish reasons of every reply and stream,
    in any protocol, come from the request's record (reply_summary, filled as the reply goes out)."""
    if not isinstance(response, web.Response) or response.status != 200:
        return
    body = response.body
    if not isinstance(body, bytes):
        return
    try:
        reply = json_codec.loads(body)
    except json_codec.JSONDecodeError:
        return
    if not isinstance(reply, dict):
        return
    response_id = reply.get("id")
    if isinstance(response_id, str):
        span.set_attribute(attr.RESPONSE_ID, response_id)


_INPUT_FIELDS = ("messages", "input", "prompt")  # where a client's body has its conversation
_SYSTEM_FIELDS = ("system", "instructions")


async def _capture_content(span: Span, request: web.Request, response: web.StreamResponse) -> None:
    """With content capture on: the client's messages (in its protocol's shape) and a JSON reply's
    body, each capped; a stream's output is not kept (it went to the client piece by piece)."""
    try:
        body = json_codec.loads(await request.read())  # (aiohttp keeps the bytes the handler read)
    except (json_codec.JSONDecodeError, web.HTTPException):
        return
    if isinstance(body, dict):
        for name in _INPUT_FIELDS:
            if name in body:
                span.set_attribute(attr.INPUT_MESSAGES, capped(body[name]))
                break
        for name in _SYSTEM_FIELDS:
            if name in body:
                span.set_attribute(attr.SYSTEM_INSTRUCTIONS, capped(body[name]))
                break
    if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.status < 300:
        span.set_attribute(attr.OUTPUT_MESSAGES, capped(response.body.decode("utf-8", "replace")))
