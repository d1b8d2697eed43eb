"""The tracer the app uses when tracing is on: its provider (resource, processors, exporters), the
hooks it puts into the app (a middleware, wrapped transports), and its flush at shutdown."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from aiohttp.typedefs import Middleware
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer

from gateway import __version__
from gateway.engine.protocol import operations
from gateway.tracing.settings import TracingSettings
from gateway.upstream.transport import Transport

DEFAULT_SERVICE_NAME = "llm-gateway"


def gateway_resource(env: Mapping[str, str]) -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), named `llm-gateway` rather than
    the SDK's `unknown_service` when neither names the service; with the gateway's version."""
    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    ours: dict[str, str] = {SERVICE_VERSION: __version__}
    if not named:
        ours[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    return Resource.create(ours)


class Tracing:
    """One tracer provider and what the app needs of it. `owned`: the app shuts the provider down at
    its cleanup (flushing what is batched); otherwise (a test's) it is only flushed."""

    def __init__(
        self, provider: TracerProvider, *, capture_content: bool = False, owned: bool = False
    ) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("llm-gateway", __version__)
        self.capture_content = capture_content
        self.owned = owned
        # the client operation behind each served path (a route's canonical path): its dialect operation
        self.operations: dict[str, str] = {
            path: operation.canonical for operation in operations() for path in operation.paths
        }

    def middleware(self) -> Middleware:
        from gateway.tracing.server_span import server_span_middleware

        return server_span_middleware(self)

    def transports(self, chosen: Mapping[str, Transport]) -> dict[str, Transport]:
        """Each transport wrapped so that every upstream attempt is a CLIENT span."""
        from gateway.tracing.client_span import TracedTransport

        return {name: TracedTransport(transport, self.tracer) for name, transport in chosen.items()}

    async def close(self) -> None:
        """Export what is still batched (at most the exporter's timeout), off the event loop."""
        if self.owned:
            await asyncio.to_thread(self.provider.shutdown)
        else:
            await asyncio.to_thread(self.provider.force_flush)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from OTEL_EXPORTER_OTLP_*


def exporting_tracing(settings: TracingSettings, env: Mapping[str, str] | None = None) -> Tracing:
    """A provider that batches spans to the configured exporters (OTEL_BSP_* tune the batching)."""
    provider = TracerProvider(resource=gateway_resource(os.environ if env is None else env))
    for name in settings.exporters:
        processor: SpanProcessor = BatchSpanProcessor(_exporter(name))
        provider.add_span_processor(processor)
    return Tracing(provider, capture_content=settings.capture_content, owned=True)
