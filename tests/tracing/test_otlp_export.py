"""Spans reach an OTLP/HTTP receiver, configured by the standard environment variables alone: a local
aiohttp server decodes the protobuf ExportTraceServiceRequest the gateway's exporter posts to it."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed (pip install -e '.[otel]')")

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gateway.app import create_app
from tests.support.fake_upstreams import FakeOpenAI
from tests.support.routes import OPENAI_ALIAS, OPENAI_UPSTREAM_MODEL
from tests.tracing.rig import AUTH, SECRETS, holder


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


class Receiver:
    """An OTLP/HTTP traces endpoint (POST /v1/traces, protobuf): what it was sent, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []

    async def traces(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        self.requests.append(ExportTraceServiceRequest.FromString(await request.read()))
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Each span with its resource's attributes."""
        return [
            (_attributes(resource_spans.resource.attributes), span)
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


async def test_spans_arrive_over_otlp_http(monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.traces)
    async with TestServer(app) as server:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        gateway = create_app(holder(fake_openai.url))  # tracing from the environment, as in production
        async with TestClient(TestServer(gateway)) as client:
            body = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": "hi"}]}
            response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
            assert response.status == 200
        # the app's cleanup shut the tracer provider down: what it had batched was exported then
    assert receiver.content_types and set(receiver.content_types) == {"application/x-protobuf"}
    spans = receiver.spans()
    by_kind = {span.kind: (resource, span) for resource, span in spans}
    assert len(spans) == 2 and set(by_kind) == {2, 3}  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
    (resource, server), (_, client) = by_kind[2], by_kind[3]
    assert resource["service.name"] == "gateway-under-test"
    assert server.name == f"chat {OPENAI_ALIAS}" and client.name == f"chat {OPENAI_UPSTREAM_MODEL}"
    assert client.parent_span_id == server.span_id and client.trace_id == server.trace_id
    attributes = _attributes(client.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == OPENAI_UPSTREAM_MODEL
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert _attributes(server.attributes)["gateway.key"] == "team-a"
    assert not any(
        secret.encode() in request.SerializeToString() for request in receiver.requests for secret in SECRETS
    )
