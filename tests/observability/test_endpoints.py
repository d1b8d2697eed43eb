"""/metrics, /healthz and /readyz on a tiny app that registers them."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.observability.endpoints import healthz, metrics_handler, readyz
from gateway.observability.keys import METRICS, READINESS, Readiness
from gateway.observability.metrics import GatewayMetrics
from tests.observability.exposition import parse, value


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
