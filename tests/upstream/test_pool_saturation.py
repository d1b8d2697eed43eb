"""The pool's limits seen from a client of the gateway: a saturated origin is a quick 503
`upstream_saturated` that rests no target and is not retried (another target of the route is tried),
the gauges show the pool, and a reload applies new limits to the live pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.app_keys import COOLDOWNS
from gateway.observability.keys import METRICS
from gateway.reload import RegistryHolder
from tests.upstream.raw_server import RawServer, read_request, response

REPLY = b'{"id":"c1","object":"chat.completion","created":1,"model":"x","choices":[]}'
BODY = {"messages": [{"role": "user", "content": "hi"}]}


class HeldUpstream:
    """Answers every request once `release` is set; `arrived` counts the requests it is holding."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()
        self.count = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            async with self.arrived:
                self.count += 1
                self.arrived.notify_all()
            await self.release.wait()
            writer.write(response(200, REPLY, {"Content-Type": "application/json"}))

    async def wait_for(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: self.count >= count), 5.0)


def config(busy_url: str, spare_url: str, per_origin: int) -> dict[str, Any]:
    return {
        "upstream": {"max_connections_per_origin": per_origin, "pool_timeout": 0.3},
        "providers": {
            "busy": {
                "dialect": "openai",
                "base_url": busy_url,
                "cooldown": {"failures": 1},
                "retry": {"attempts": 3},
            },
            "spare": {"dialect": "openai", "base_url": spare_url},
        },
        "models": {
            "busy": [{"provider": "busy", "model": "x"}],
            "either": [{"provider": "busy", "model": "x"}, {"provider": "spare", "model": "x"}],
        },
    }


def exposition_lines(client: TestClient[Any, Any]) -> list[str]:
    text: str = client.app[METRICS].render()[0].decode()
    return text.splitlines()


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[HeldUpstream, RawServer, RawServer]]:
    held = HeldUpstream()
    spare = HeldUpstream()
    spare.release.set()
    async with RawServer(held) as busy_server, RawServer(spare) as spare_server:
        yield held, busy_server, spare_server
        held.release.set()


async def test_a_saturated_origin_is_a_quick_503_that_rests_no_target(
    aiohttp_client: Any, tmp_path: Path, upstreams: tuple[HeldUpstream, RawServer, RawServer]
) -> None:
    held, busy, spare = upstreams
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(config(busy.url("/v1"), spare.url("/v1"), per_origin=1)))
    holder = RegistryHolder.load(str(path))
    client: TestClient[Any, Any] = await aiohttp_client(create_app(holder))

    first = asyncio.create_task(client.post("/v1/chat/completions", json={"model": "busy", **BODY}))
    await held.wait_for(1)  # the one connection to `busy` is taken

    started = time.monotonic()
    refused = await asyncio.wait_for(client.post("/v1/chat/completions", json={"model": "busy", **BODY}), 5)
    elapsed = time.monotonic() - started
    assert refused.status == 503
    error = (await refused.json())["error"]
    assert error["code"] == "upstream_saturated" and f"127.0.0.1:{busy.port}" in error["message"]
    assert 0.3 <= elapsed < 1.3  # the pool_timeout, not the connect timeout (10 s)
    target = holder.current.routes["busy"].first
    assert client.app[COOLDOWNS].status(target.key, target.provider.cooldown) == "ok"  # not rested
    retried = [line for line in exposition_lines(client) if line.startswith("gateway_retries_total{")]
    assert not [line for line in retried if 'provider="busy"' in line]  # a saturated pool is not retried

    fallback = await client.post("/v1/chat/completions", json={"model": "either", **BODY})
    assert fallback.status == 200  # the next target of the route took it

    exposition = exposition_lines(client)
    origin = f'origin="http://127.0.0.1:{busy.port}"'
    assert f"gateway_upstream_connections_open{{{origin}}} 1.0" in exposition
    assert f"gateway_upstream_connections_idle{{{origin}}} 0.0" in exposition
    assert f"gateway_upstream_pool_waiting{{{origin}}} 0.0" in exposition

    held.release.set()
    assert (await first).status == 200


async def test_a_reload_applies_new_limits_to_the_live_pool(
    aiohttp_client: Any, tmp_path: Path, upstreams: tuple[HeldUpstream, RawServer, RawServer]
) -> None:
    held, busy, spare = upstreams
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(config(busy.url("/v1"), spare.url("/v1"), per_origin=1)))
    holder = RegistryHolder.load(str(path))
    client: TestClient[Any, Any] = await aiohttp_client(create_app(holder))

    first = asyncio.create_task(client.post("/v1/chat/completions", json={"model": "busy", **BODY}))
    await held.wait_for(1)
    refused = await asyncio.wait_for(client.post("/v1/chat/completions", json={"model": "busy", **BODY}), 5)
    assert refused.status == 503  # one connection per origin, for now
    path.write_text(yaml.safe_dump(config(busy.url("/v1"), spare.url("/v1"), per_origin=2)))
    assert holder.reload()
    second = asyncio.create_task(client.post("/v1/chat/completions", json={"model": "busy", **BODY}))
    await held.wait_for(2)  # a second connection was allowed: the new limit is live
    held.release.set()
    assert [(await first).status, (await second).status] == [200, 200]
