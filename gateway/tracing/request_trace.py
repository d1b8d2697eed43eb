"""What a traced request's upstream attempts need of its server span, found through a context variable
(the attempt loop passes nothing of tracing along)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from opentelemetry.context import Context

from gateway.proxy.request_record import RequestRecord


@dataclass(slots=True)
class RequestTrace:
    """What a request's upstream attempts need of its server span: the context their spans are children
    of, the GenAI operation, the request's record; and what the last attempt learned for the server span."""

    context: Context
    operation: str | None  # gen_ai.operation.name, when the request is a GenAI call
    access: RequestRecord
    attempts: int = 0
    provider: str | None = None  # gen_ai.provider.name of the last attempt
    target: str | None = None


# the request being handled, for the traced transports (set by the tracing middleware only)
CURRENT: ContextVar[RequestTrace | None] = ContextVar("gateway_request_trace", default=None)
