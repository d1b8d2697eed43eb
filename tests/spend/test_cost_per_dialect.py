"""Cost per request for every dialect, streams included, from recorded upstream replies (data:
cost_cases.yaml): the access log's `cost_usd`, and the `x-gateway-cost-usd` header on replies that
are not streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.prices.price import cost_text
from gateway.reload import RegistryHolder
from gateway.spend.cost import COST_HEADER
from tests.engine.replay_transport import ReplayTransport
from tests.engine.test_dialect_fixtures import FIXTURES, upstream_headers, upstream_parts
from tests.support.access_events import access_events

DATA = yaml.safe_load((Path(__file__).parent / "cost_cases.yaml").read_text())
DIALECTS = sorted(p.stem for p in (FIXTURES.parent.parent / "gateway" / "dialects").glob("*.yaml"))


def test_every_dialect_has_a_plain_and_a_stream_case() -> None:
    """Every shipped dialect but the built-in mock (tested with the app) has a plain and a stream case."""
    streams = {name.split("/")[0] for name in DATA["cases"] if "stream" in name}
    plain = {name.split("/")[0] for name in DATA["cases"] if "stream" not in name}
    assert streams == plain == set(DIALECTS) - {"mock"}


@pytest.mark.parametrize(("name", "expected"), sorted(DATA["cases"].items()))
async def test_cost_of_a_recorded_reply(name: str, expected: float, aiohttp_client: Any) -> None:
    case = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    model = case.get("upstream_model", "upstream-model")
    provider = {
        "dialect": name.split("/")[0],
        "base_url": "http://upstream.test/base",
        "api_key": "sk-provider-key",
        **(case.get("provider") or {}),
        "prices": {model: DATA["price"]},
    }
    routes = {"providers": {"p": provider}, "models": {"client-model": [{"provider": "p", "model": model}]}}
    registry = build_registry(config_from_text(yaml.safe_dump(routes), "routes.yaml", {}))
    assert registry.config.warnings == ()  # priced: no warning
    transport = ReplayTransport(status=200, headers=upstream_headers(case), parts=upstream_parts(case))
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client: TestClient[Any, Any] = await aiohttp_client(app)
    request = {"model": "client-model", **case["client_request"]}
    stream = request.get("stream") is True
    request.pop("stream_options", None)  # the client does not ask for usage: the gateway counts it anyway
    with access_events() as events:
        response = await client.post(case.get("endpoint", "/v1/chat/completions"), json=request)
        raw = await response.read()
        event = events.wait_for(1)[0]
    assert response.status == 200, raw.decode()
    assert event["cost_usd"] == pytest.approx(expected, abs=1e-12)
    if stream:
        assert COST_HEADER not in response.headers  # (sent before the usage existed)
    else:
        assert response.headers[COST_HEADER] == cost_text(expected)
