"""Real parts, wired together: the gateway app and fake upstreams on 127.0.0.1, each in its own thread.

The servers are started once per session; every test starts with empty fakes (no recorded requests,
nothing queued) and every gate a test handed out is released when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openai
import pytest

from gateway.app import create_app
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI
from tests.support.routes import CLIENT_KEY, routes, write_routes
from tests.support.servers import ServerThread, closed_port


@dataclass(frozen=True)
class RunningGateway:
    url: str  # http://127.0.0.1:PORT
    config_path: Path

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().serve()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().serve()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(autouse=True)
def _fresh_fakes(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Iterator[None]:
    fake_openai.reset()
    fake_anthropic.reset()
    yield
    fake_openai.reset()
    fake_anthropic.reset()


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> Iterator[RunningGateway]:
    """The gateway app served the way `gateway.cli.serve` serves it (gateway.server.gateway_runner)."""
    path = tmp_path_factory.mktemp("gateway") / "routes.yaml"
    unreachable = f"http://127.0.0.1:{closed_port()}/v1"
    write_routes(path, routes(fake_openai.url, fake_anthropic.url, unreachable_url=unreachable))
    holder = RegistryHolder.load(str(path))
    limits = holder.current.config.limits
    server = ServerThread(
        lambda: create_app(holder),
        name="gateway",
        runner=lambda app: gateway_runner(app, limits, shutdown_timeout=2.0),
    ).start()
    try:
        yield RunningGateway(server.url, path)
    finally:
        server.stop()


@pytest.fixture
def gateway_url(gateway: RunningGateway) -> str:
    return gateway.url


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.v1, api_key=CLIENT_KEY, max_retries=0, timeout=15.0) as sdk:
        yield sdk


@pytest.fixture
async def async_client(gateway: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=gateway.v1, api_key=CLIENT_KEY, max_retries=0, timeout=15.0
    ) as sdk:
        yield sdk


@pytest.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for raw bodies and SSE bytes (base URL: the gateway)."""
    timeout = aiohttp.ClientTimeout(total=15.0)
    async with aiohttp.ClientSession(
        base_url=gateway.url, timeout=timeout, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    ) as session:
        yield session
