"""Pieces for an SDK test module that runs its own gateway (its own routes.yaml) against its own fakes.

`running_gateway` serves a config the way `gateway.cli.serve` does; `checked_client` and
`checked_async_client` are official openai SDK clients whose every response body is checked against
the OpenAI spec when the client is closed (whatever the test itself asserted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import openai
import pytest

from gateway.app import create_app
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.routes import CLIENT_KEY, write_routes
from tests.support.servers import ServerThread
from tests.support.spec_transport import AsyncRecordingTransport, RecordingTransport, check_all

SDK_TIMEOUT = 15.0


@contextmanager
def running_gateway(path: Path, config: dict[str, Any], *, name: str = "gateway") -> Iterator[str]:
    """The gateway serving `config` (written to `path`); yields its base URL (http://127.0.0.1:PORT)."""
    write_routes(path, config)
    holder = RegistryHolder.load(str(path))
    limits = holder.current.config.limits
    server = ServerThread(
        lambda: create_app(holder),
        name=name,
        runner=lambda app: gateway_runner(app, limits, shutdown_timeout=2.0),
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def checked_client(gateway_url: str) -> Iterator[openai.OpenAI]:
    transport = RecordingTransport()
    with openai.OpenAI(
        base_url=f"{gateway_url}/v1",
        api_key=CLIENT_KEY,
        max_retries=0,
        timeout=SDK_TIMEOUT,
        http_client=httpx2.Client(transport=transport),
    ) as sdk:
        yield sdk
    check_all(transport.exchanges)


@asynccontextmanager
async def checked_async_client(gateway_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    transport = AsyncRecordingTransport()
    async with openai.AsyncOpenAI(
        base_url=f"{gateway_url}/v1",
        api_key=CLIENT_KEY,
        max_retries=0,
        timeout=SDK_TIMEOUT,
        http_client=httpx2.AsyncClient(transport=transport),
    ) as sdk:
        yield sdk
    check_all(transport.exchanges)


@asynccontextmanager
async def raw_http(gateway_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for raw bodies and SSE bytes (base URL: the gateway)."""
    async with aiohttp.ClientSession(
        base_url=gateway_url,
        timeout=aiohttp.ClientTimeout(total=SDK_TIMEOUT),
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
    ) as session:
        yield session


def fake_fixtures(name: str, make: Callable[[], Any]) -> tuple[Any, Any]:
    """A module-scoped fixture `name` serving the fake `make()` builds, and an autouse fixture that resets
    it before and after every test. Assign both at module level:
    `fake_x, _fresh_fake_x = fake_fixtures("fake_x", FakeX)`."""

    @pytest.fixture(scope="module", name=name)
    def fake() -> Iterator[Any]:
        served = make().serve()
        try:
            yield served
        finally:
            served.close()

    @pytest.fixture(autouse=True, name=f"_fresh_{name}")
    def fresh(request: pytest.FixtureRequest) -> Iterator[None]:
        served = request.getfixturevalue(name)
        served.reset()
        yield
        served.reset()

    return fake, fresh


def sdk_fixtures(gateway: str) -> tuple[Any, Any, Any]:
    """The `client`, `async_client` (spec-checked, see above) and `http` fixtures for the gateway URL the
    fixture named `gateway` yields. Assign all three at module level: `client, async_client, http = ...`."""

    @pytest.fixture(name="client")
    def client(request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
        with checked_client(request.getfixturevalue(gateway)) as sdk:
            yield sdk

    @pytest.fixture(name="async_client")
    async def async_client(request: pytest.FixtureRequest) -> AsyncIterator[openai.AsyncOpenAI]:
        async with checked_async_client(request.getfixturevalue(gateway)) as sdk:
            yield sdk

    @pytest.fixture(name="http")
    async def http(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
        async with raw_http(request.getfixturevalue(gateway)) as session:
            yield session

    return client, async_client, http
