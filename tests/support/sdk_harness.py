"""Pieces for an SDK test module that runs its own gateway (its own routes.yaml) against its own fakes.

`running_gateway` serves a config the way `gateway.cli.serve` does; `checked_client` and
`checked_async_client` are official openai SDK clients whose every response body is checked against
the OpenAI spec when the client is closed (whatever the test itself asserted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import openai

from gateway.app import create_app
from gateway.reload import RegistryHolder
from tests.support.routes import CLIENT_KEY, write_routes
from tests.support.servers import ServerThread
from tests.support.spec_transport import AsyncRecordingTransport, RecordingTransport, check_all

SDK_TIMEOUT = 15.0


@contextmanager
def running_gateway(path: Path, config: dict[str, Any]) -> Iterator[str]:
    """The gateway serving `config` (written to `path`); yields its base URL (http://127.0.0.1:PORT)."""
    write_routes(path, config)
    holder = RegistryHolder.load(str(path))
    server = ServerThread(lambda: create_app(holder), name="gateway", handler_cancellation=True).start()
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
