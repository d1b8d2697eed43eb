"""Request-size limits, answered at the edge in OpenAI's envelope before anything goes upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.app import create_app
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI
from tests.support.openai_spec import assert_error_body
from tests.support.routes import OPENAI_ALIAS, routes, write_routes
from tests.support.servers import ServerThread

MAX_BODY = 2048


@pytest.fixture(scope="module")
def small_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> Iterator[str]:
    config = routes(fake_openai.url, fake_anthropic.url)
    config["limits"] = {"max_body_bytes": MAX_BODY}
    path: Path = write_routes(tmp_path_factory.mktemp("limits") / "routes.yaml", config)
    holder = RegistryHolder.load(str(path))
    limits = holder.current.config.limits
    server = ServerThread(
        lambda: create_app(holder),
        name="small-gateway",
        runner=lambda app: gateway_runner(app, limits, shutdown_timeout=2.0),
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def session(small_gateway: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=small_gateway, timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def test_body_over_the_limit_is_413(session: aiohttp.ClientSession, fake_openai: FakeOpenAI) -> None:
    body = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": "x" * (MAX_BODY * 2)}]}
    async with session.post("/v1/chat/completions", json=body) as response:
        assert response.status == 413
        assert_error_body(await response.json(), code="request_too_large", type_="invalid_request_error")
    assert fake_openai.requests == []


async def test_body_under_the_limit_is_served(
    session: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    body = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": "x" * (MAX_BODY // 2)}]}
    async with session.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
    assert fake_openai.only().json["messages"] == body["messages"]
