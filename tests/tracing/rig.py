"""The traced rig: a gateway app traced into the SDK's in-memory exporter, in front of a fake OpenAI
upstream (and an unreachable one). Needs the `otel` extra: test modules importorskip it first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from gateway.tracing.tracing import Tracing
from tests.support.routes import OPENAI_KEY, OPENAI_UPSTREAM_MODEL, routes
from tests.support.servers import closed_port

RETRY_ALIAS = "gpt-retry"  # two tries of the fake, no backoff to speak of
CLIENT_KEY = "sk-tracing-client-key-never-in-a-span"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
SECRETS = (CLIENT_KEY, OPENAI_KEY)


def traced_routes(openai_url: str) -> dict[str, Any]:
    config = routes(
        openai_url,
        "http://127.0.0.1:9",  # (no Anthropic upstream here)
        unreachable_url=f"http://127.0.0.1:{closed_port()}/v1",
        extra_models={
            RETRY_ALIAS: {
                "targets": [{"provider": "openai-fake", "model": OPENAI_UPSTREAM_MODEL}],
                "retry": {"attempts": 2, "initial_backoff": 0.001, "max_backoff": 0.001},
            }
        },
    )
    config["auth"] = {"keys": [{"name": "team-a", "key": CLIENT_KEY}]}
    return config


@dataclass
class Traced:
    client: TestClient[Any, Any]
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self, kind_name: str) -> ReadableSpan:
        found = [span for span in self.spans() if span.kind.name == kind_name]
        assert len(found) == 1, [(span.name, span.kind.name) for span in self.spans()]
        return found[0]

    def clients(self) -> list[ReadableSpan]:
        return sorted(
            (span for span in self.spans() if span.kind.name == "CLIENT"),
            key=lambda span: span.start_time or 0,
        )


def in_memory_tracing(*, capture_content: bool = False) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, capture_content=capture_content), exporter


def holder(openai_url: str) -> RegistryHolder:
    registry = build_registry(config_from_text(yaml.safe_dump(traced_routes(openai_url)), "routes.yaml", {}))
    return RegistryHolder("routes.yaml", registry)


async def traced_client(
    openai_url: str, *, capture_content: bool = False
) -> tuple[TestClient[Any, Any], InMemorySpanExporter]:
    tracing, exporter = in_memory_tracing(capture_content=capture_content)
    app = create_app(holder(openai_url), tracing=tracing)
    return TestClient(TestServer(app)), exporter
