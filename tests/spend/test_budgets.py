"""Budgets per key through the whole app: 429 insufficient_quota before any upstream call once a key
has spent its budget, a request in flight when it is crossed completes, the memory and the Redis
store (shared by two gateways), and a store that cannot answer (closed: 503, open: served)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.app_keys import LIMITS, REGISTRY
from gateway.auth.limits import Limits, MemoryLimits, Usage
from gateway.config.loader import config_from_text
from gateway.config.model import GatewayKey
from gateway.engine.registry import Target, build_registry
from gateway.observability.keys import METRICS
from gateway.reload import RegistryHolder
from gateway.upstream.mock import MockTransport
from tests.support.access_events import access_events
from tests.support.redis_server import REDIS_SERVER, redis_server
from tests.support.spec_check import spec_errors

KEY = "gw-team-a-0123456789abcdef"
OTHER = "gw-team-b-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
# "one two" costs 2 prompt + 4 completion tokens on the mock: at 10,000 USD per million each,
# 0.06 USD a request
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "one two"}]}
PER_REQUEST = 0.06


def routes(budget: str, extra: str = "", store: str = "memory", redis_url: str = "") -> str:
    redis = f"\n  redis_url: {redis_url}" if redis_url else ""
    return f"""
auth:
  store: {store}{redis}{extra}
  keys:
    - {{name: team-a, key: {KEY}, budget: {budget}}}
    - {{name: team-b, key: {OTHER}, metrics: true}}
providers:
  mock: {{dialect: mock, transport: mock, prices: {{m: {{input: 10000, output: 10000}}}}}}
models:
  mock: [{{provider: mock, model: m}}]
"""


class CountingTransport(MockTransport):
    """The mock upstream, counting what reaches it; with `gate`, each request waits for it first."""

    def __init__(self, gate: asyncio.Event | None = None, expected: int = 0) -> None:
        super().__init__()
        self.opened = 0
        self.gate = gate
        self.all_waiting = asyncio.Event()
        self.expected = expected

    @asynccontextmanager
    async def open(self, target: Target, url: str, payload: Any, *args: Any) -> AsyncIterator[Any]:
        self.opened += 1
        if self.gate is not None:
            if self.opened == self.expected:
                self.all_waiting.set()
            await self.gate.wait()
        async with super().open(target, url, payload, *args) as reply:
            yield reply


def app_for(
    text: str, transport: MockTransport | None = None, store: Limits | None = None
) -> web.Application:
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    return create_app(
        RegistryHolder("routes.yaml", registry),
        transports={"mock": transport or MockTransport()},
        limits_store=store,
    )


async def post(client: TestClient[Any, Any]) -> Any:
    response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    await response.read()
    await client.app[LIMITS].settled()  # its cost is in the store
    return response


async def test_a_key_over_budget_gets_429_before_any_upstream_call() -> None:
    transport = CountingTransport()
    app = app_for(routes("{usd: 0.1, period: day}"), transport)
    async with TestClient(TestServer(app)) as client:
        first = await post(client)  # spent 0
        second = await post(client)  # spent 0.06
        assert (first.status, second.status) == (200, 200)
        assert float(first.headers["x-gateway-cost-usd"]) == pytest.approx(PER_REQUEST)
        with access_events() as events:
            refused = await post(client)  # spent 0.12
            event = events.wait_for(1)[0]
        body = await refused.json()
        assert refused.status == 429 and transport.opened == 2  # the upstream saw nothing more
        assert spec_errors("ErrorResponse", body) == []
        assert (body["error"]["type"], body["error"]["code"]) == ("insufficient_quota", "insufficient_quota")
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        assert body["error"]["message"] == (
            f"The key 'team-a' has spent its budget of $0.1 per day (spent $0.12). "
            f"It resets at {tomorrow}T00:00:00Z."
        )
        assert 0 < int(refused.headers["retry-after"]) <= 86400
        assert event["rate_limited"] == "budget" and event["status"] == 429
        metrics = await (await client.get("/metrics", headers={"Authorization": f"Bearer {OTHER}"})).text()
        assert 'gateway_rate_limited_total{key="team-a",kind="budget"} 1.0' in metrics
        ratio = next(
            x for x in metrics.splitlines() if x.startswith('gateway_budget_used_ratio{key="team-a"}')
        )
        assert float(ratio.split()[-1]) == pytest.approx(1.2)
        assert (
            f'gateway_cost_usd_total{{alias="mock",key="team-a",model="m",provider="mock"}} {0.12}' in metrics
        )


async def test_a_request_in_flight_when_the_budget_is_crossed_completes() -> None:
    gate = asyncio.Event()
    transport = CountingTransport(gate, expected=2)
    app = app_for(routes("{usd: 0.05, period: total}"), transport)
    async with TestClient(TestServer(app)) as client:
        both = asyncio.gather(post(client), post(client))
        await asyncio.wait_for(transport.all_waiting.wait(), 10)  # both admitted, at the upstream
        gate.set()
        first, second = await both
        assert (first.status, second.status) == (200, 200)  # the second crossed it in flight: served
        refused = await post(client)
        assert refused.status == 429 and transport.opened == 2
        assert "budget of $0.05 in total (spent $0.12)." in (await refused.json())["error"]["message"]
        assert "retry-after" not in refused.headers  # a total budget never resets


async def test_a_key_without_a_budget_is_not_counted() -> None:
    app = app_for(routes("{usd: 0.01}"))
    async with TestClient(TestServer(app)) as client:
        for _ in range(3):
            response = await client.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {OTHER}"}
            )
            assert response.status == 200
        assert app[LIMITS].pending_spends == 0


# -- a store that cannot answer ------------------------------------------------------------------


class DownStore(MemoryLimits):
    async def admit(self, key: GatewayKey) -> Usage:
        raise ConnectionError("redis://:secret@store:6379 is down")


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("", 503),  # budget_store_failure: closed by default
        ("\n  budget_store_failure: closed\n  store_failure: open", 503),
        ("\n  budget_store_failure: open", 200),
    ],
)
async def test_an_unreachable_store_fails_closed_by_default(extra: str, status: int) -> None:
    transport = CountingTransport()
    app = app_for(routes("{usd: 10}", extra), transport, DownStore())
    async with TestClient(TestServer(app)) as client:
        with access_events() as events:
            response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            events.wait_for(1)
        assert response.status == status
        if status == 503:
            error = (await response.json())["error"]
            assert error["code"] == "budget_store_unavailable" and transport.opened == 0
            assert response.headers["retry-after"] == "1"
        assert (
            app[METRICS].registry.get_sample_value(
                "gateway_rate_limit_store_errors_total", {"operation": "admit"}
            )
            == 1
        )


# -- Redis: the same budget for every gateway ----------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with redis_server() as url:
        yield url


async def test_redis_shares_a_budget_between_two_gateways(redis_url: str) -> None:
    text = routes("{usd: 0.1, period: month}", store="redis", redis_url=redis_url)
    first_upstream, second_upstream = CountingTransport(), CountingTransport()
    async with (
        TestClient(TestServer(app_for(text, first_upstream))) as first,
        TestClient(TestServer(app_for(text, second_upstream))) as second,
    ):
        assert (await post(first)).status == 200
        assert (await post(second)).status == 200  # spent 0.06, through the other gateway
        refused = await post(first)
        assert refused.status == 429 and (first_upstream.opened, second_upstream.opened) == (1, 1)
        assert "per month (spent $0.12)" in (await refused.json())["error"]["message"]
        report = await second.app[LIMITS].spend_report(second.app[REGISTRY].current.config.auth.keys[0])
        assert report["month"].requests == 2 and report["month"].usd == pytest.approx(0.12)
        assert report["day"].input_tokens == 4 and report["total"].output_tokens == 8
