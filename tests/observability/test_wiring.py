"""Metrics and health through the whole app, and no secret anywhere a client or operator can see."""

from __future__ import annotations

import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text, key_digest
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from tests.observability.exposition import parse, value

PROVIDER_SECRET = "sk-provider-SECRET-0123456789"
GATEWAY_KEY = "gw-key-SECRET-0123456789abcdef"
SCRAPER_KEY = "gw-scraper-SECRET-0123456789ab"
ROUTES = f"""
auth:
  keys:
    - {{name: team-a, hash: "{key_digest(GATEWAY_KEY)}", rpm: 100}}
    - {{name: prometheus, hash: "{key_digest(SCRAPER_KEY)}", metrics: true, models: []}}
providers:
  mock: {{dialect: mock, transport: mock, api_key: "${{PROVIDER_KEY}}"}}
  down: {{dialect: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${{PROVIDER_KEY}}"}}
models:
  mock: [{{provider: mock, model: m}}]
  down: [{{provider: down, model: x}}]
"""


async def test_metrics_health_and_no_secret_anywhere() -> None:
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {"PROVIDER_KEY": PROVIDER_SECRET}))
    auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    chat = {"model": "mock", "messages": [{"role": "user", "content": "hello there"}]}
    seen: list[str] = []
    with structlog.testing.capture_logs() as events:
        async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
            for body in (
                chat,
                {**chat, "stream": True, "stream_options": {"include_usage": True}},
                {**chat, "model": "down"},
                {**chat, "model": "nope"},
            ):
                response = await client.post("/v1/chat/completions", json=body, headers=auth)
                seen.append(f"{response.status} {dict(response.headers)} {await response.text()}")
            denied = await client.post(
                "/v1/chat/completions", json=chat, headers={"Authorization": "Bearer wrong-key-123456"}
            )
            seen.append(await denied.text())
            ready = await client.get("/readyz")
            health = await client.get("/healthz")
            refused = await client.get("/metrics", headers=auth)  # a key without `metrics: true`
            seen.append(await refused.text())
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_KEY}"})
            text = await metrics.text()
    assert ready.status == 200
    assert health.status == 200
    assert refused.status == 403
    assert metrics.status == 200
    samples = parse(text)
    assert value(samples, "gateway_requests_total", model="mock", provider="mock", status="200") == 2
    # a failed target is named; an unknown model never puts a client string in the labels
    assert value(samples, "gateway_requests_total", model="down", provider="down", status="502") == 1
    assert value(samples, "gateway_requests_total", model="unknown", provider="unknown", status="404") == 1
    assert (value(samples, "gateway_tokens_total", model="mock", provider="mock", direction="out") or 0) > 0
    assert value(samples, "gateway_time_to_first_byte_seconds_count", model="mock", provider="mock") == 1
    assert value(samples, "gateway_config_reloads_total", result="ok") == 0
    everything = repr(events) + "".join(seen) + text
    for secret in (PROVIDER_SECRET, GATEWAY_KEY, SCRAPER_KEY):
        assert secret not in everything
    assert [e.get("key") for e in events if e["event"] == "request"][:4] == ["team-a"] * 4
