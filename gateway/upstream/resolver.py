"""Host name resolution for new upstream connections, with a short cache.

A gateway talks to a handful of hosts, and opens connections to them in bursts (a traffic spike, a
pool refilling after the upstream closed idle connections): without a cache every new connection
pays a resolver round trip, and a burst of them asks the same question hundreds of times. Answers are
kept `ttl` seconds (short: a provider that moves its endpoints is followed within that time), and
concurrent lookups of one name share a single query. Failures are not cached.

Resolution is `loop.getaddrinfo` (a thread of the default executor on asyncio, libuv's pool on
uvloop); an IP address is answered without either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]

_MAX_NAMES = 1024  # cached (host, port) pairs; past it the cache starts over (bounded by config in practice)


class Resolver:
    def __init__(self, ttl: float = 10.0, clock: Callable[[], float] | None = None) -> None:
        """`clock` (default: the event loop's) is for tests."""
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[AddrInfo]]] = {}

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses of `host` for a TCP connection to `port`, IPv6 and IPv4 alike (happy
        eyeballs picks). OSError (socket.gaierror) when the name does not resolve."""
        literal = _literal(host, port)
        if literal is not None:
            return literal
        key = (host, port)
        loop = asyncio.get_running_loop()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > (self._clock or loop.time)():
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = loop.create_task(self._lookup(key))
            pending.add_done_callback(_retrieve)  # every caller may have left: nobody else reads it
        # shielded: a caller that gives up (cancelled, timed out) does not cancel the others' answer
        return await asyncio.shield(pending)

    def clear(self) -> None:
        self._cache.clear()

    async def _lookup(self, key: tuple[str, int]) -> list[AddrInfo]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
        finally:
            del self._pending[key]
        if not infos:
            raise socket.gaierror(socket.EAI_NONAME, f"no address for {key[0]}")
        found: list[AddrInfo] = [(int(f), int(t), p, c, tuple(a)) for f, t, p, c, a in infos]
        if self.ttl > 0:
            if len(self._cache) >= _MAX_NAMES:
                self._cache.clear()
            self._cache[key] = ((self._clock or loop.time)() + self.ttl, found)
        return found


def _retrieve(task: asyncio.Future[list[AddrInfo]]) -> None:
    if not task.cancelled():
        task.exception()


def _literal(host: str, port: int) -> list[AddrInfo] | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.version == 6:
        if address.scope_id:
            return None  # fe80::1%eth0: getaddrinfo turns the zone into the scope number
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))]
