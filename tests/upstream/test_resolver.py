"""The short DNS cache in front of getaddrinfo: answers reused for `ttl`, one query for concurrent
lookups of a name, failures not cached, IP addresses never looked up."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from gateway.upstream.resolver import Resolver

ANSWER = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 443))]


class FakeDns:
    """Stands in for loop.getaddrinfo: counts queries; `release` holds them until set."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.failures = 0  # the next N queries fail

    async def __call__(self, host: str, port: int, **_: Any) -> list[Any]:
        self.queries.append((host, port))
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return ANSWER


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake)
    return fake


async def test_answers_are_reused_for_the_ttl(dns: FakeDns) -> None:
    now = [100.0]
    resolver = Resolver(ttl=10.0, clock=lambda: now[0])
    assert await resolver.resolve("api.test", 443) == ANSWER
    now[0] += 9.9
    assert await resolver.resolve("api.test", 443) == ANSWER
    assert len(dns.queries) == 1
    now[0] += 0.2  # past the ttl
    await resolver.resolve("api.test", 443)
    assert len(dns.queries) == 2


async def test_ttl_zero_asks_every_time(dns: FakeDns) -> None:
    resolver = Resolver(ttl=0)
    await resolver.resolve("api.test", 443)
    await resolver.resolve("api.test", 443)
    assert len(dns.queries) == 2


async def test_concurrent_lookups_of_a_name_share_one_query(dns: FakeDns) -> None:
    resolver = Resolver()
    dns.release.clear()
    lookups = [asyncio.create_task(resolver.resolve("api.test", 443)) for _ in range(5)]
    while not dns.queries:  # noqa: ASYNC110 - the first lookup reaching the fake is the event
        await asyncio.sleep(0)
    dns.release.set()
    assert await asyncio.gather(*lookups) == [ANSWER] * 5
    assert dns.queries == [("api.test", 443)]


async def test_a_caller_that_gives_up_does_not_cancel_the_others(dns: FakeDns) -> None:
    resolver = Resolver()
    dns.release.clear()
    leaving = asyncio.create_task(resolver.resolve("api.test", 443))
    staying = asyncio.create_task(resolver.resolve("api.test", 443))
    while not dns.queries:  # noqa: ASYNC110 - the first lookup reaching the fake is the event
        await asyncio.sleep(0)
    leaving.cancel()
    dns.release.set()
    assert await staying == ANSWER
    assert leaving.cancelled()


async def test_failures_are_not_cached(dns: FakeDns) -> None:
    resolver = Resolver()
    dns.failures = 1
    with pytest.raises(socket.gaierror):
        await resolver.resolve("api.test", 443)
    assert await resolver.resolve("api.test", 443) == ANSWER
    assert len(dns.queries) == 2


async def test_ip_addresses_are_not_looked_up(dns: FakeDns) -> None:
    resolver = Resolver()
    assert await resolver.resolve("127.0.0.1", 80) == [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))
    ]
    assert (await resolver.resolve("::1", 80))[0][0] == socket.AF_INET6
    assert dns.queries == []
