"""GET /v1/gateway/keys/{name}/spend: an admin key's view of a key's spend, requests and tokens in
each current period, read from the limits store."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app_keys import LIMITS
from gateway.spend.budget import period_id
from tests.spend.test_budgets import AUTH, KEY, OTHER, PER_REQUEST, DownStore, app_for, post, routes
from tests.support.spec_check import spec_errors

ADMIN = "gw-operator-0123456789abcdef"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
TEXT = routes("{usd: 1, period: month}").replace(
    "  keys:\n", f"  keys:\n    - {{name: ops, key: {ADMIN}, admin: true}}\n"
)
URL = "/v1/gateway/keys/{}/spend"


async def test_an_admin_reads_a_keys_spend_in_each_period() -> None:
    async with TestClient(TestServer(app_for(TEXT))) as client:
        for _ in range(2):
            assert (await post(client)).status == 200
        response = await client.get(URL.format("team-a"), headers=ADMIN_AUTH)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        body = await response.json()
        now = time.time()
        figures = {
            "usd": pytest.approx(2 * PER_REQUEST),
            "requests": 2,
            "input_tokens": 4,
            "output_tokens": 8,
        }
        assert body == {
            "object": "gateway.key_spend",
            "key": "team-a",
            "budget": {"usd": 1.0, "period": "month"},
            "counted": True,
            "periods": {
                "day": {
                    "period": period_id("day", now),
                    "resets_at": (int(now) // 86400 + 1) * 86400,
                    **figures,
                },
                "month": {
                    "period": period_id("month", now),
                    "resets_at": body["periods"]["month"]["resets_at"],
                    **figures,
                },
                "total": {"period": "total", "resets_at": None, **figures},
            },
            "remaining_usd": pytest.approx(1 - 2 * PER_REQUEST),
        }
        assert time.gmtime(body["periods"]["month"]["resets_at"])[2:6] == (1, 0, 0, 0)  # 1st, midnight


async def test_a_key_without_a_budget_is_not_counted() -> None:
    async with TestClient(TestServer(app_for(TEXT))) as client:
        body = await (await client.get(URL.format("team-b"), headers=ADMIN_AUTH)).json()
        assert body == {"object": "gateway.key_spend", "key": "team-b", "budget": None, "counted": False}


@pytest.mark.parametrize(
    ("headers", "name", "status", "code"),
    [
        ({}, "team-a", 401, "missing_api_key"),
        ({"Authorization": "Bearer gw-not-a-key-0000000000"}, "team-a", 401, "invalid_api_key"),
        (AUTH, "team-a", 403, "admin_only"),  # a key may not read even its own spend
        ({"Authorization": f"Bearer {OTHER}"}, "team-a", 403, "admin_only"),  # metrics: true is not admin
        (ADMIN_AUTH, "nobody", 404, "key_not_found"),
    ],
)
async def test_only_an_admin_key_reads_spend(
    headers: dict[str, str], name: str, status: int, code: str
) -> None:
    async with TestClient(TestServer(app_for(TEXT))) as client:
        response = await client.get(URL.format(name), headers=headers)
        body = await response.json()
        assert (response.status, body["error"]["code"]) == (status, code)
        assert spec_errors("ErrorResponse", body) == []


async def test_with_no_keys_there_is_no_admin() -> None:
    text = (
        "providers: {mock: {dialect: mock, transport: mock}}\nmodels: {mock: [{provider: mock, model: m}]}\n"
    )
    async with TestClient(TestServer(app_for(text))) as client:
        response = await client.get(URL.format("anyone"))
        assert response.status == 401


async def test_a_store_that_cannot_answer_is_a_503_not_a_500() -> None:
    class NoReports(DownStore):
        async def spend_report(self, key: Any) -> Any:
            raise ConnectionError("down")

    async with TestClient(TestServer(app_for(TEXT, store=NoReports()))) as client:
        response = await client.get(URL.format("team-a"), headers=ADMIN_AUTH)
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "budget_store_unavailable"
        assert client.app[LIMITS].pending_spends == 0
        assert KEY not in await response.text()
