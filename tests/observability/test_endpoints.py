"""/metrics, /healthz and /readyz on a tiny app that registers them, and /metrics behind gateway keys."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config.loader import config_from_text, key_digest
from gateway.engine.registry import build_registry
from gateway.observability.endpoints import healthz, metrics_handler, readyz
from gateway.observability.keys import METRICS, READINESS, Readiness
from gateway.observability.metrics import GatewayMetrics
from gateway.reload import RegistryHolder
from tests.observability.exposition import parse, value
from tests.support.spec_check import spec_errors


def tiny_app() -> web.Application:
    app = web.Application()
    app[METRICS] = GatewayMetrics()
    app[READINESS] = Readiness()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@pytest.fixture
def app() -> web.Application:
    return tiny_app()


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(app)
    return result


async def test_metrics_serves_the_exposition(client: TestClient[Any, Any], app: web.Application) -> None:
    app[METRICS].observe_request("mock", "mock", 200, False, 0.01, 0.009, None, 3, 4)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    samples = parse(await response.text())
    assert value(samples, "gateway_requests_total", model="mock", provider="mock", status="200") == 1
    assert value(samples, "gateway_tokens_total", model="mock", provider="mock", direction="out") == 4


async def test_metrics_is_compressed_for_scrapers_that_accept_it(client: TestClient[Any, Any]) -> None:
    response = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "gateway_config_reloads_total" in await response.text()  # the client inflates it
    plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


async def test_healthz_is_ok_while_the_process_is_up(
    client: TestClient[Any, Any], app: web.Application
) -> None:
    app[READINESS].draining = True  # liveness does not care about readiness
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok"


async def test_readyz_is_ready_by_default(client: TestClient[Any, Any]) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert await response.json() == {"status": "ready"}


@pytest.mark.parametrize(
    ("draining", "config_loaded", "reasons"),
    [
        (True, True, ["draining"]),
        (False, False, ["config_not_loaded"]),
        (True, False, ["config_not_loaded", "draining"]),
    ],
)
async def test_readyz_says_why_it_is_not_ready(
    client: TestClient[Any, Any],
    app: web.Application,
    draining: bool,
    config_loaded: bool,
    reasons: list[str],
) -> None:
    readiness = app[READINESS]
    readiness.draining = draining
    readiness.config_loaded = config_loaded
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Content-Type"] == "application/json"
    assert await response.json() == {"status": "not_ready", "reasons": reasons}


async def test_readyz_recovers(client: TestClient[Any, Any], app: web.Application) -> None:
    readiness = app[READINESS]
    readiness.config_loaded = False
    assert (await client.get("/readyz")).status == 503
    readiness.config_loaded = True
    assert (await client.get("/readyz")).status == 200


# ---- /metrics with gateway keys: a key with `metrics: true` only; probes stay open --------------------
SCRAPER_KEY = "gw-scraper-0123456789abcdef"
TEAM_KEY = "gw-team-0123456789abcdef"
KEYED_ROUTES = f"""
auth:
  keys:
    - {{name: scraper, hash: "{key_digest(SCRAPER_KEY)}", metrics: true, models: []}}
    - {{name: team, hash: "{key_digest(TEAM_KEY)}"}}
providers: {{mock: {{dialect: mock, transport: mock}}}}
models: {{mock: [{{provider: mock, model: m}}]}}
"""


def gateway_app(routes: str) -> web.Application:
    return create_app(
        RegistryHolder("routes.yaml", build_registry(config_from_text(routes, "routes.yaml", {})))
    )


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        pytest.param(None, 401, "missing_api_key", id="no-key"),
        pytest.param("Bearer gw-not-a-key-0123456789", 401, "invalid_api_key", id="unknown-key"),
        pytest.param(f"Basic {TEAM_KEY}", 401, "missing_api_key", id="not-bearer"),
        pytest.param(f"Bearer {TEAM_KEY}", 403, "metrics_not_allowed", id="key-without-metrics"),
        pytest.param(f"Bearer {SCRAPER_KEY}", 200, None, id="metrics-key"),
    ],
)
async def test_with_keys_metrics_needs_a_metrics_key(
    aiohttp_client: Any, authorization: str | None, status: int, code: str | None
) -> None:
    client = await aiohttp_client(gateway_app(KEYED_ROUTES))
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status == status
    assert response.headers["x-request-id"].startswith("req_")
    if code is None:
        assert "gateway_requests_total" in await response.text()
        return
    body = await response.json()
    assert spec_errors("ErrorResponse", body) == []
    assert body["error"]["code"] == code
    assert SCRAPER_KEY not in await response.text()


async def test_with_keys_probes_stay_open_and_a_metrics_key_serves_no_model(aiohttp_client: Any) -> None:
    client = await aiohttp_client(gateway_app(KEYED_ROUTES))
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    chat = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    scraper = {"Authorization": f"Bearer {SCRAPER_KEY}"}
    assert (await client.post("/v1/chat/completions", json=chat, headers=scraper)).status == 403  # models: []


async def test_without_keys_metrics_is_open(aiohttp_client: Any) -> None:
    open_routes = KEYED_ROUTES[KEYED_ROUTES.index("providers:") :]
    client = await aiohttp_client(gateway_app(open_routes))
    assert (await client.get("/metrics")).status == 200
